"""What every queue consumer shares: attaching on connect, in-flight tracking, a clean stop."""

from __future__ import annotations

import asyncio
import contextlib

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from prometheus_client import Counter, Histogram

from chat_platform.amqp.broker import Broker

CONSUMED = Counter(
    "chat_consumer_messages_total",
    "Deliveries handled by a consumer, by queue and outcome.",
    ["queue", "outcome"],
)
HANDLE_SECONDS = Histogram(
    "chat_consumer_handle_seconds",
    "Time a consumer spent on one delivery.",
    ["queue"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)


class QueueWorker:
    """Consumes one queue on a channel of its own; subclasses declare it and handle deliveries.

    Deliveries that arrive while stopping go back to the queue; `stop()`
    cancels the consumer and waits for the deliveries in hand.
    """

    def __init__(self, broker: Broker, queue: str, *, prefetch: int, confirms: bool) -> None:
        self.broker = broker
        self.queue_name = queue
        self.prefetch = prefetch
        self.confirms = confirms
        self.channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self) -> None:
        """Attach now if the broker is connected (returning once attached), else on connect."""
        attaching = self.broker.on_connect(self._attach)
        if attaching is not None:
            await attaching

    async def _attach(self) -> None:
        self.channel = await self.broker.channel(self.prefetch, confirms=self.confirms)
        self._queue = await self.declare(self.channel)
        self._tag = await self._queue.consume(self._on_message)

    async def declare(self, channel: AbstractRobustChannel) -> AbstractQueue:
        """Declare (and bind) the queue this worker consumes."""
        raise NotImplementedError

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Handle one delivery, acknowledging or rejecting it."""
        raise NotImplementedError

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._stopping:
            await message.nack(requeue=True)
            return
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self.handle(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=timeout)
