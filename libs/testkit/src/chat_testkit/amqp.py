"""Looking at RabbitMQ from a test: watch an exchange, read a queue, clean up afterwards."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection


@dataclass
class Rabbit:
    """A plain aio-pika connection for the test's own eyes, and what to delete afterwards.

    `exchange` is the events exchange of `namespace` (what services get with
    NAMESPACE set); append durable queue names to `queues` for `cleanup()`.
    """

    connection: AbstractRobustConnection
    namespace: str
    queues: list[str] = field(default_factory=list)

    @property
    def exchange(self) -> str:
        return f"{self.namespace}.events"

    async def watch(self, *routing_keys: str) -> AbstractQueue:
        """A private queue bound to the events exchange: sees every event published from now."""
        channel = await self.connection.channel()
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in routing_keys or ("#",):
            await queue.bind(exchange, routing_key=key)
        return queue

    async def get(self, queue_name: str, timeout: float = 5.0) -> AbstractIncomingMessage:
        """The next message of a named queue, waiting for it; fails the test if none comes."""
        channel = await self.connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        return await self.get_from(queue, timeout)

    @staticmethod
    async def get_from(queue: AbstractQueue, timeout: float = 5.0) -> AbstractIncomingMessage:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await queue.get(no_ack=True, fail=False)
            if message is not None:
                return message
            if loop.time() >= deadline:
                raise AssertionError(f"no message in {queue.name} within {timeout} s")
            await asyncio.sleep(0.02)

    async def count(self, queue_name: str) -> int:
        """Messages ready in a queue (not those a consumer holds unacknowledged)."""
        channel = await self.connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        count = queue.declaration_result.message_count
        await channel.close()
        return count or 0

    async def cleanup(self) -> None:
        """Delete the test's durable queues and its exchanges; absent ones are no-ops."""
        channel = await self.connection.channel()
        for queue in self.queues:
            await channel.queue_delete(queue)
            await channel.queue_delete(f"{queue}.dead")
        for exchange in (self.exchange, f"{self.exchange}.dead"):
            await channel.exchange_delete(exchange)
        await channel.close()


# The durable queues the services declare under their NAMESPACE (each also has a `.dead` one).
SERVICE_QUEUES = ("gateway.events", "message.commands", "message.reads", "message.users")


def remove_service_namespace(amqp_url: str, namespace: str) -> None:
    """Delete what stopped services declared on a shared broker under `namespace`.

    Without this, every test run would leave its durable queues and exchanges behind.
    """

    async def remove() -> None:
        connection = await aio_pika.connect(amqp_url)
        try:
            channel = await connection.channel()
            for queue in SERVICE_QUEUES:
                await channel.queue_delete(f"{namespace}.{queue}")
                await channel.queue_delete(f"{namespace}.{queue}.dead")
            for exchange in ("events", "events.dead"):
                await channel.exchange_delete(f"{namespace}.{exchange}")
        finally:
            await connection.close()

    asyncio.run(remove())
