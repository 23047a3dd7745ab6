"""Event consumers: one durable queue each, with retries and a dead-letter queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from prometheus_client import Histogram
from pydantic import ValidationError

from chat_contracts import Envelope
from chat_platform.amqp.broker import Broker
from chat_platform.amqp.worker import CONSUMED, HANDLE_SECONDS, QueueWorker

log = logging.getLogger(__name__)

EVENT_LAG = Histogram(
    "chat_consumer_event_lag_seconds",
    "Time from an event's occurrence to its consumption.",
    ["queue"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0),
)

EventHandler = Callable[[Envelope], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    """One durable queue bound to some routing keys, handled by one function.

    Failed deliveries are retried `max_retries` times after `retry_delay`
    seconds, then parked in `<queue>.dead` for a person to look at.
    """

    queue: str
    routing_keys: Sequence[str]
    handler: EventHandler
    prefetch: int = 64
    max_retries: int = 5
    retry_delay: float = 0.5


class Consumer(QueueWorker):
    """Runs a ConsumerSpec on its own channel; `stop()` finishes what is in hand."""

    def __init__(self, broker: Broker, spec: ConsumerSpec) -> None:
        super().__init__(broker, spec.queue, prefetch=spec.prefetch, confirms=True)
        self.spec = spec

    async def declare(self, channel: AbstractRobustChannel) -> AbstractQueue:
        spec = self.spec
        dead_exchange = await channel.declare_exchange(
            f"{self.broker.exchange_name}.dead", aio_pika.ExchangeType.DIRECT, durable=True
        )
        dead_queue = await channel.declare_queue(f"{spec.queue}.dead", durable=True)
        await dead_queue.bind(dead_exchange, routing_key=spec.queue)
        queue = await channel.declare_queue(
            spec.queue,
            durable=True,
            arguments={
                "x-dead-letter-exchange": dead_exchange.name,
                "x-dead-letter-routing-key": spec.queue,
            },
        )
        exchange = await channel.declare_exchange(
            self.broker.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for key in spec.routing_keys:
            await queue.bind(exchange, routing_key=key)
        log.info("consuming", extra={"queue": spec.queue})
        return queue

    async def handle(self, message: AbstractIncomingMessage) -> None:
        queue = self.spec.queue
        try:
            envelope = Envelope.model_validate_json(message.body)
        except ValidationError:
            log.error("malformed event parked", extra={"queue": queue})
            CONSUMED.labels(queue, "malformed").inc()
            await message.reject(requeue=False)
            return
        started = time.perf_counter()
        EVENT_LAG.labels(queue).observe(max(0.0, time.time() - envelope.occurred_at.timestamp()))
        try:
            await self.spec.handler(envelope)
        except Exception:
            await self._retry_or_park(message, envelope)
            return
        finally:
            HANDLE_SECONDS.labels(queue).observe(time.perf_counter() - started)
        await message.ack()
        CONSUMED.labels(queue, "ok").inc()

    async def _retry_or_park(self, message: AbstractIncomingMessage, envelope: Envelope) -> None:
        queue = self.spec.queue
        raw_retries = (message.headers or {}).get("x-retries", 0)
        retries = raw_retries if isinstance(raw_retries, int) else 0
        if retries >= self.spec.max_retries:
            log.exception(
                "event parked after retries", extra={"queue": queue, "event_id": envelope.id}
            )
            CONSUMED.labels(queue, "dead").inc()
            await message.reject(requeue=False)
            return
        log.warning(
            "event handler failed, will retry",
            exc_info=True,
            extra={"queue": queue, "event_id": envelope.id, "retries": retries},
        )
        CONSUMED.labels(queue, "retry").inc()
        await asyncio.sleep(self.spec.retry_delay * (retries + 1))
        assert message.channel is not None
        retry = aio_pika.Message(
            message.body,
            content_type=message.content_type,
            message_id=message.message_id,
            type=message.type,
            headers={"x-retries": retries + 1},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await message.channel.basic_publish(
            retry.body, routing_key=queue, properties=retry.properties
        )
        await message.ack()
