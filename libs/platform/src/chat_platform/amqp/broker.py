"""The process's one robust connection to RabbitMQ, and confirmed publishing of events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection, AbstractRobustExchange
from prometheus_client import Counter

from chat_contracts import Envelope

log = logging.getLogger(__name__)

PUBLISHED = Counter("chat_events_published_total", "Events confirmed by the broker.", ["type"])

OnConnect = Callable[[], Coroutine[Any, Any, None]]


class BrokerUnavailable(Exception):
    """The broker cannot take a publish right now (down, or no confirm in time)."""


class Broker:
    """The process's connection to RabbitMQ.

    `start()` returns at once even if the broker is down; a background task keeps
    trying, and readiness reports `rabbitmq` as failing until it connects.
    Publishing waits for the broker's confirm, so a returned `publish` means the
    broker has the event.
    """

    def __init__(self, url: str, exchange: str, *, name: str, publish_timeout: float = 5.0):
        self.url = url
        self.exchange_name = exchange
        self.name = name
        self.publish_timeout = publish_timeout
        self.connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._connected = asyncio.Event()
        self._connect_task: asyncio.Task[None] | None = None
        self._on_connect: list[OnConnect] = []
        self._on_reconnect: list[Callable[[], None]] = []

    async def start(self, wait: float = 5.0) -> None:
        self._connect_task = asyncio.create_task(self._connect_forever(), name="amqp-connect")
        # The task ends once connected *and* the registered consumers are attached, so an
        # event published after `start()` returns reaches their queues.
        await asyncio.wait({self._connect_task}, timeout=wait)

    def on_connect(self, callback: OnConnect) -> asyncio.Task[None] | None:
        """Run `callback` once connected (now, if already): how consumers attach.

        Returns the task running it when already connected, for the caller to await.
        """
        self._on_connect.append(callback)
        if self._connected.is_set():
            return asyncio.get_running_loop().create_task(callback())
        return None

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call `callback` each time the connection comes back after it was lost."""
        self._on_reconnect.append(callback)

    def _reconnected(self, *_: Any) -> None:
        for callback in self._on_reconnect:
            callback()

    async def _connect_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                self.connection = await aio_pika.connect_robust(
                    self.url, client_properties={"connection_name": self.name}, timeout=5
                )
                self._channel = await self.connection.channel(publisher_confirms=True)
                self._exchange = await self._channel.declare_exchange(
                    self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                self.connection.reconnect_callbacks.add(self._reconnected)
                self._connected.set()
                log.info("connected to rabbitmq", extra={"exchange": self.exchange_name})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("rabbitmq unreachable, retrying", extra={"error": str(exc)})
                if self.connection is not None:
                    with contextlib.suppress(Exception):
                        await self.connection.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            # Attaching consumers is not connecting: a failure here is a bug to report,
            # not a reason to reconnect (the robust connection re-attaches what succeeded).
            # A snapshot: a callback registered meanwhile runs from `on_connect`, not twice.
            for callback in list(self._on_connect):
                try:
                    await callback()
                except Exception:
                    log.exception("attaching to rabbitmq failed")
            return

    @property
    def connected(self) -> bool:
        return (
            self._connected.is_set()
            and self.connection is not None
            and not self.connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def check(self) -> None:
        if not self.connected:
            raise BrokerUnavailable("not connected")

    async def channel(self, prefetch: int, *, confirms: bool = True) -> AbstractRobustChannel:
        """A channel on the connection; `confirms=False` for request/reply traffic, where
        the reply is the confirmation and a lost message times out into a retry."""
        await self._connected.wait()
        assert self.connection is not None
        channel: AbstractRobustChannel = await self.connection.channel(publisher_confirms=confirms)
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def publish(self, envelope: Envelope) -> None:
        """Publish and wait for the broker's confirm; raises BrokerUnavailable otherwise."""
        if not self.connected or self._exchange is None:
            raise BrokerUnavailable("not connected")
        message = aio_pika.Message(
            envelope.model_dump_json().encode(),
            content_type="application/json",
            message_id=envelope.id,
            type=envelope.type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=envelope.occurred_at,
        )
        try:
            await asyncio.wait_for(
                self._exchange.publish(message, routing_key=envelope.type), self.publish_timeout
            )
        except Exception as exc:
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc
        PUBLISHED.labels(envelope.type).inc()

    async def close(self) -> None:
        if self._connect_task is not None:
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connect_task
        if self.connection is not None:
            await self.connection.close()
