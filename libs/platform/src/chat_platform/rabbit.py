"""RabbitMQ: a confirmed publisher, a consumer runner, and request/reply commands.

One robust connection per process. Publishing waits for the broker's confirm,
so a returned `publish` means the broker has the event. Consumers share one
runner that owns prefetch, retries, dead-lettering, metrics and shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
)
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from chat_contracts import Envelope, ErrorCode

log = logging.getLogger(__name__)

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
EVENT_LAG = Histogram(
    "chat_consumer_event_lag_seconds",
    "Time from an event's occurrence to its consumption.",
    ["queue"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0),
)
PUBLISHED = Counter("chat_events_published_total", "Events confirmed by the broker.", ["type"])


class BrokerUnavailable(Exception):
    """The broker cannot take a publish right now (down, or no confirm in time)."""


class Broker:
    """The process's connection to RabbitMQ.

    `start()` returns at once even if the broker is down; a background task keeps
    trying, and readiness reports `rabbitmq` as failing until it connects.
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
        self._on_connect: list[Callable[[], Coroutine[Any, Any, None]]] = []

    async def start(self, wait: float = 5.0) -> None:
        self._connect_task = asyncio.create_task(self._connect_forever(), name="amqp-connect")
        # The task ends once connected *and* the registered consumers are attached, so an
        # event published after `start()` returns reaches their queues.
        await asyncio.wait({self._connect_task}, timeout=wait)

    def on_connect(
        self, callback: Callable[[], Coroutine[Any, Any, None]]
    ) -> asyncio.Task[None] | None:
        """Run `callback` once connected (now, if already): how consumers attach.

        Returns the task running it when already connected, for `start()` to await.
        """
        self._on_connect.append(callback)
        if self._connected.is_set():
            return asyncio.get_running_loop().create_task(callback())
        return None

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


class Consumer:
    """Runs a ConsumerSpec on its own channel; `stop()` finishes what is in hand."""

    def __init__(self, broker: Broker, spec: ConsumerSpec) -> None:
        self.broker = broker
        self.spec = spec
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
        spec = self.spec
        channel = await self.broker.channel(spec.prefetch)
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
        self._queue = queue
        self._tag = await queue.consume(self._on_message)
        log.info("consuming", extra={"queue": spec.queue})

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._stopping:
            await message.nack(requeue=True)
            return
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._handle(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
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
        channel = message.channel
        await channel.basic_publish(retry.body, routing_key=queue, properties=retry.properties)
        await message.ack()

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=timeout)


# --- commands: request/reply over RabbitMQ ------------------------------------------------------

CommandHandler = Callable[[dict[str, Any]], Awaitable[Any]]


class CommandError(Exception):
    """A command answered with a contract error (or could not be answered at all)."""

    def __init__(self, code: ErrorCode | str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.details = details


class CommandServer:
    """Serves named commands from one durable queue, replying to each caller's queue.

    A command is acknowledged only after its reply is sent, so a crash mid-way
    redelivers it; handlers must therefore be idempotent (sends are, by
    `client_msg_id`). Handlers raise `CommandError` for contract errors.
    """

    def __init__(
        self,
        broker: Broker,
        queue: str,
        handlers: dict[str, CommandHandler],
        *,
        prefetch: int = 256,
        error_mapper: Callable[[Exception], CommandError | None] = lambda _: None,
    ) -> None:
        self.broker = broker
        self.queue_name = queue
        self.handlers = handlers
        self.prefetch = prefetch
        self.error_mapper = error_mapper
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._channel: AbstractRobustChannel | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self) -> None:
        """Attach now if the broker is connected (returning once attached), else on connect."""
        attaching = self.broker.on_connect(self._attach)
        if attaching is not None:
            await attaching

    async def _attach(self) -> None:
        self._channel = await self.broker.channel(self.prefetch, confirms=False)
        self._queue = await self._channel.declare_queue(self.queue_name, durable=True)
        self._tag = await self._queue.consume(self._on_message)
        log.info("serving commands", extra={"queue": self.queue_name})

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._stopping:
            await message.nack(requeue=True)
            return
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            reply = await self._run(message)
            if message.reply_to and self._channel is not None:
                await self._channel.default_exchange.publish(
                    aio_pika.Message(
                        json.dumps(reply, default=str).encode(),
                        content_type="application/json",
                        correlation_id=message.correlation_id,
                    ),
                    routing_key=message.reply_to,
                )
            await message.ack()
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _run(self, message: AbstractIncomingMessage) -> dict[str, Any]:
        name = message.type or ""
        handler = self.handlers.get(name)
        started = time.perf_counter()
        try:
            if handler is None:
                raise CommandError(ErrorCode.NOT_FOUND, f"Unknown command {name!r}.")
            payload = json.loads(message.body)
            if not isinstance(payload, dict):
                raise CommandError(ErrorCode.VALIDATION_ERROR, "A command body is an object.")
            result = await handler(payload)
            CONSUMED.labels(self.queue_name, "ok").inc()
            return {"ok": True, "result": result}
        except Exception as exc:
            error = exc if isinstance(exc, CommandError) else self.error_mapper(exc)
            if error is None:
                log.exception("command failed", extra={"command": name})
                error = CommandError(ErrorCode.INTERNAL, "Internal error.")
            CONSUMED.labels(self.queue_name, error.code.value).inc()
            body: dict[str, Any] = {"code": error.code.value, "message": error.message}
            if error.details:
                body["details"] = error.details
            return {"ok": False, "error": body}
        finally:
            HANDLE_SECONDS.labels(self.queue_name).observe(time.perf_counter() - started)

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=timeout)


class CommandClient:
    """Sends commands and awaits their replies on a private, exclusive reply queue."""

    def __init__(self, broker: Broker, queue: str, *, timeout: float = 10.0) -> None:
        self.broker = broker
        self.queue_name = queue
        self.timeout = timeout
        self._channel: AbstractRobustChannel | None = None
        self._reply_queue: AbstractQueue | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def start(self) -> None:
        """Attach now if the broker is connected (returning once attached), else on connect."""
        attaching = self.broker.on_connect(self._attach)
        if attaching is not None:
            await attaching

    async def _attach(self) -> None:
        self._channel = await self.broker.channel(prefetch=0, confirms=False)
        self._reply_queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await self._reply_queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            try:
                future.set_result(json.loads(message.body))
            except ValueError as exc:
                future.set_exception(exc)

    async def call(
        self, name: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Any:
        """The command's result; raises CommandError (code `unavailable` if no answer came)."""
        timeout = timeout or self.timeout
        if self._channel is None or self._reply_queue is None or not self.broker.connected:
            raise CommandError(ErrorCode.UNAVAILABLE, "The message service is unreachable.")
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            await self._channel.default_exchange.publish(
                aio_pika.Message(
                    json.dumps(payload).encode(),
                    content_type="application/json",
                    type=name,
                    correlation_id=correlation_id,
                    reply_to=self._reply_queue.name,
                    expiration=timeout,
                ),
                routing_key=self.queue_name,
            )
            reply = await asyncio.wait_for(future, timeout)
        except CommandError:
            raise
        except Exception as exc:
            raise CommandError(
                ErrorCode.UNAVAILABLE, "The message service did not answer in time."
            ) from exc
        finally:
            self._pending.pop(correlation_id, None)
        if reply.get("ok"):
            return reply.get("result")
        error = reply.get("error") or {}
        code = str(error.get("code"))
        raise CommandError(
            ErrorCode(code) if code in ErrorCode._value2member_map_ else ErrorCode.INTERNAL,
            error.get("message", "Error."),
            error.get("details"),
        )
