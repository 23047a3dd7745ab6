"""Commands: request/reply over RabbitMQ, typed by the contracts on both sides.

The client publishes a contract `Command` to the service's durable queue with
a private reply queue; the server parses it into the same model, runs the
handler registered for it and answers `{ok, result}` or `{ok, error}`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from pydantic import ValidationError

from chat_contracts.commands import Answer, Command, Reply
from chat_contracts.errors import ApiError, ErrorCode, invalid_payload, timed_out, unavailable
from chat_platform.amqp.broker import Broker
from chat_platform.amqp.worker import CONSUMED, HANDLE_SECONDS, QueueWorker
from chat_platform.deadlines import current_deadline, expired

# Epoch milliseconds, an integer: AMQP tables may carry floats in single precision, which
# at today's epoch is off by minutes.
DEADLINE_HEADER = "x-deadline-ms"

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Command[Any])
R = TypeVar("R", bound=Reply)

Handler = Callable[[Any], Awaitable[Reply]]


class CommandHandlers:
    """Which function answers each command."""

    def __init__(self) -> None:
        self._routes: dict[str, tuple[type[Command[Any]], Handler]] = {}

    def add(self, command: type[C], handler: Callable[[C], Awaitable[Reply]]) -> CommandHandlers:
        self._routes[command.name] = (command, handler)
        return self

    def get(self, name: str) -> tuple[type[Command[Any]], Handler] | None:
        return self._routes.get(name)


class CommandServer(QueueWorker):
    """Serves commands from one durable queue, replying to each caller's queue.

    A command is acknowledged only after its reply is sent, so a crash mid-way
    redelivers it; handlers must therefore be idempotent (sends are, by
    `client_msg_id`). Handlers raise `ApiError` for the contract's errors.
    """

    def __init__(
        self, broker: Broker, queue: str, handlers: CommandHandlers, *, prefetch: int = 256
    ) -> None:
        # Replies go out without publisher confirms: the reply is the confirmation, and a
        # lost one times out on the caller's side into a retry with the same request.
        super().__init__(broker, queue, prefetch=prefetch, confirms=False)
        self.handlers = handlers

    async def declare(self, channel: AbstractRobustChannel) -> AbstractQueue:
        queue = await channel.declare_queue(self.queue_name, durable=True)
        log.info("serving commands", extra={"queue": self.queue_name})
        return queue

    async def handle(self, message: AbstractIncomingMessage) -> None:
        raw_deadline = (message.headers or {}).get(DEADLINE_HEADER)
        deadline = raw_deadline / 1000 if isinstance(raw_deadline, int) else None
        if expired(deadline):
            # The caller stopped waiting: doing the work now would answer nobody.
            CONSUMED.labels(self.queue_name, "expired").inc()
            await message.ack()
            return
        token = current_deadline.set(deadline)
        try:
            answer = await self._answer(message)
        finally:
            current_deadline.reset(token)
        if message.reply_to and self.channel is not None:
            await self.channel.default_exchange.publish(
                aio_pika.Message(
                    answer.to_json(),
                    content_type="application/json",
                    correlation_id=message.correlation_id,
                ),
                routing_key=message.reply_to,
            )
        await message.ack()

    async def _answer(self, message: AbstractIncomingMessage) -> Answer[Reply]:
        name = message.type or ""
        started = time.perf_counter()
        try:
            route = self.handlers.get(name)
            if route is None:
                raise ApiError(ErrorCode.NOT_FOUND, f"Unknown command {name!r}.")
            model, handler = route
            try:
                command = model.model_validate_json(message.body)
            except ValidationError as exc:
                raise invalid_payload(exc.errors()) from None
            result = await handler(command)
            CONSUMED.labels(self.queue_name, "ok").inc()
            return Answer(ok=True, result=result)
        except Exception as exc:
            if isinstance(exc, ApiError):
                error = exc
            else:
                log.exception("command failed", extra={"command": name})
                error = ApiError(ErrorCode.INTERNAL, "Internal error.")
            CONSUMED.labels(self.queue_name, error.code.value).inc()
            return Answer(ok=False, error=error.detail())
        finally:
            HANDLE_SECONDS.labels(self.queue_name).observe(time.perf_counter() - started)


class CommandClient:
    """Sends commands and awaits their replies on a private, exclusive reply queue.

    Each command goes to `<namespace>.<its queue>`. It carries its deadline: past
    it the server drops it unprocessed, and the caller has its answer already.
    """

    def __init__(
        self,
        broker: Broker,
        namespace: str,
        *,
        timeout: float = 10.0,
        reconnect_wait: float = 2.0,
    ) -> None:
        self.broker = broker
        self.namespace = namespace
        self.timeout = timeout
        # A connection found dead (the broker restarted) is being replaced: wait this long
        # for it, within the command's own timeout, before answering `unavailable`.
        self.reconnect_wait = reconnect_wait
        self._channel: AbstractRobustChannel | None = None
        self._reply_queue: AbstractQueue | None = None
        self._pending: dict[str, asyncio.Future[bytes]] = {}

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
            future.set_result(message.body)

    async def call(self, command: Command[R], *, timeout: float | None = None) -> R:
        """The command's typed reply, or ApiError: the service's own error, `unavailable`
        when the command could not be sent (nothing happened), `timeout` when no answer
        came in time (the outcome is unknown)."""
        timeout = timeout or self.timeout
        loop = asyncio.get_running_loop()
        started = loop.time()
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = loop.create_future()
        self._pending[correlation_id] = future
        try:
            # Sent once the connection is usable; one more try if the send meets a connection
            # that died under it (a broker restart), so that only a real outage is refused.
            for attempt in (1, 2):
                if not await self._usable(started + min(self.reconnect_wait, timeout)):
                    raise unavailable("The message service is unreachable; retry.", 1)
                try:
                    await self._send(command, correlation_id, timeout - (loop.time() - started))
                    break
                except Exception as exc:
                    if attempt == 2:
                        raise unavailable("The message service is unreachable; retry.", 1) from exc
            try:
                body = await asyncio.wait_for(future, timeout - (loop.time() - started))
            except TimeoutError:
                raise timed_out("The message service did not answer in time.") from None
        finally:
            self._pending.pop(correlation_id, None)
        answer = _answer_model(type(command).reply).model_validate_json(body)
        if answer.ok and answer.result is not None:
            return answer.result
        if answer.error is None:
            raise ApiError(ErrorCode.INTERNAL, "The message service answered nothing.")
        raise ApiError.from_detail(answer.error)

    async def _usable(self, until: float) -> bool:
        """Whether the connection is up, waiting for it (until `until`) if it is coming back."""
        loop = asyncio.get_running_loop()
        while not (
            self.broker.connected
            and self._channel is not None
            and not self._channel.is_closed
            and self._reply_queue is not None
        ):
            if loop.time() >= until:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _send(self, command: Command[Any], correlation_id: str, timeout: float) -> None:
        assert self._channel is not None
        assert self._reply_queue is not None
        await asyncio.wait_for(
            self._channel.default_exchange.publish(
                aio_pika.Message(
                    command.model_dump_json().encode(),
                    content_type="application/json",
                    type=command.name,
                    correlation_id=correlation_id,
                    reply_to=self._reply_queue.name,
                    expiration=max(timeout, 0.001),
                    headers={DEADLINE_HEADER: int((time.time() + timeout) * 1000)},
                ),
                routing_key=f"{self.namespace}.{command.queue}",
            ),
            max(timeout, 0.001),
        )


_answer_models: dict[type[Reply], type[Answer[Any]]] = {}


def _answer_model(reply: type[Reply]) -> type[Answer[Any]]:
    # Parametrising a generic model builds a class; build each once.
    if reply not in _answer_models:
        _answer_models[reply] = Answer[reply]  # type: ignore[valid-type]
    return _answer_models[reply]
