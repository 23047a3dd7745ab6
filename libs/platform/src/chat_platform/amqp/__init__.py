"""RabbitMQ: the process's broker connection, event consumers, and request/reply commands."""

from chat_platform.amqp.broker import Broker, BrokerUnavailable
from chat_platform.amqp.commands import CommandClient, CommandHandlers, CommandServer
from chat_platform.amqp.consumer import Consumer, ConsumerSpec, EventHandler

__all__ = [
    "Broker",
    "BrokerUnavailable",
    "CommandClient",
    "CommandHandlers",
    "CommandServer",
    "Consumer",
    "ConsumerSpec",
    "EventHandler",
]
