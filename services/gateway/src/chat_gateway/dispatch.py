"""From a Socket.IO client event to its handler, and from whatever happens to an acknowledgement.

Every client event goes through one path: its payload is parsed into its
contract model (bounded in size first), a token is taken from the user's
budget, the handler runs, and the outcome becomes `{ok: true, ...}` or the
contract's error. Nothing a client sends can fail the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from chat_contracts.errors import ApiError, ErrorCode, invalid_payload, unavailable
from chat_gateway import metrics
from chat_gateway.connections import Connection, LocalConnections
from chat_gateway.ordering import KeyedSequencer
from chat_platform.ratelimit import Budgets

log = logging.getLogger(__name__)

Handler = Callable[[Connection, Any], Awaitable[dict[str, Any] | None]]
SocketHandler = Callable[..., Awaitable[dict[str, Any]]]


@dataclass
class Lane:
    """Events of one kind that each socket has handled one after the other, in arrival order.

    How many may wait (queued behind the socket's earlier ones, or forwarded and not yet
    answered) is bounded per socket and in all: past either bound an event is answered
    `unavailable` at once, so that waiting never grows without limit.
    """

    per_socket: int
    total: int
    order: KeyedSequencer = field(default_factory=KeyedSequencer)
    waiting: int = 0
    waiting_by_sid: dict[str, int] = field(default_factory=dict)

    def admit(self, sid: str) -> bool:
        held = self.waiting_by_sid.get(sid, 0)
        if self.waiting >= self.total or held >= self.per_socket:
            return False
        self.waiting += 1
        self.waiting_by_sid[sid] = held + 1
        return True

    def release(self, sid: str) -> None:
        self.waiting -= 1
        held = self.waiting_by_sid[sid] - 1
        if held:
            self.waiting_by_sid[sid] = held
        else:
            del self.waiting_by_sid[sid]


@dataclass
class Dispatcher:
    """Wraps handlers into Socket.IO event handlers; counts what is in flight for draining."""

    connections: LocalConnections
    # Each event spends the user's budget of the action of the same name.
    budgets: Budgets
    max_event_bytes: int
    in_flight: int = field(default=0, init=False)
    # Set while no event is being handled: draining waits for it.
    idle: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def __post_init__(self) -> None:
        self.idle.set()

    def event(
        self, name: str, model: type[BaseModel], handler: Handler, *, lane: Lane | None = None
    ) -> SocketHandler:
        """The Socket.IO handler of one client event.

        With a `lane`, one device's events of this kind are handled one after the other, in
        the order the device sent them (the library runs each event in a task of its own,
        so two quick sends could otherwise be stored the other way round), within its bounds.
        """

        async def on_event(sid: str, *args: Any) -> dict[str, Any]:
            if lane is None:
                return await handle(sid, *args)
            # Nothing is awaited before the sequencer: it relies on arrival order.
            if not lane.admit(sid):
                metrics.EVENTS.labels("in", name).inc()
                metrics.SHED_SENDS.inc()
                metrics.ERRORS.labels(name, ErrorCode.UNAVAILABLE.value).inc()
                # A fast answer the client can retry beats one that waits behind seconds
                # of queued work and times out anyway.
                return unavailable("The service is busy; retry shortly.", retry_after=1).ack()
            try:
                return await lane.order.run(sid, lambda: handle(sid, *args))
            finally:
                lane.release(sid)

        async def handle(sid: str, *args: Any) -> dict[str, Any]:
            metrics.EVENTS.labels("in", name).inc()
            self.in_flight += 1
            self.idle.clear()
            try:
                connection = self.connections.get(sid)
                if connection is None:
                    raise ApiError(ErrorCode.UNAUTHORIZED, "Not connected.")
                payload = self._parse(model, args)
                await self.budgets.spend(connection.user_id, name)
                return {"ok": True, **(await handler(connection, payload) or {})}
            except ApiError as exc:
                if exc.code is ErrorCode.RATE_LIMITED:
                    metrics.RATE_LIMITED.labels(name).inc()
                metrics.ERRORS.labels(name, exc.code.value).inc()
                return exc.ack()
            except RedisError as exc:
                # Redis down or restarting (presence lives there): a fact, not a crash.
                self.budgets.redis_unavailable(exc)
                metrics.ERRORS.labels(name, ErrorCode.UNAVAILABLE.value).inc()
                return unavailable("Try again shortly.").ack()
            except Exception:
                log.exception("event handler failed", extra={"event": name})
                metrics.ERRORS.labels(name, ErrorCode.INTERNAL.value).inc()
                return ApiError(ErrorCode.INTERNAL, "Internal error.").ack()
            finally:
                self.in_flight -= 1
                if not self.in_flight:
                    self.idle.set()

        return on_event

    async def unknown(self, event: Any, sid: str, *args: Any) -> dict[str, Any]:
        """The catch-all: an event the contract does not have."""
        metrics.EVENTS.labels("in", "unknown").inc()
        # A raw packet can name its event with any JSON value, not only a string.
        return ApiError(ErrorCode.NOT_FOUND, f"Unknown event {str(event)[:64]!r}.").ack()

    def _parse(self, model: type[BaseModel], args: tuple[Any, ...]) -> Any:
        if len(args) != 1:
            raise ApiError(ErrorCode.VALIDATION_ERROR, "The event takes one object as payload.")
        data = args[0]
        if not isinstance(data, dict):
            raise ApiError(ErrorCode.VALIDATION_ERROR, "The payload must be a JSON object.")
        try:
            size = len(json.dumps(data, separators=(",", ":")))
        except (TypeError, ValueError):
            raise ApiError(ErrorCode.VALIDATION_ERROR, "The payload must be JSON.") from None
        if size > self.max_event_bytes:
            raise ApiError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                "The payload is too large.",
                {"max_bytes": self.max_event_bytes},
            )
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise invalid_payload(exc.errors(), "The payload is not valid.") from None
