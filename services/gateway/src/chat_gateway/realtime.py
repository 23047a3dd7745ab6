"""The Socket.IO surface of the gateway: connect, disconnect and every client event.

Handlers are thin: each parses its payload into a contract model, takes a
token from the user's rate-limit bucket and calls the message service's
command (or Redis, for presence and typing). Whatever goes wrong becomes an
error acknowledgement; the connection stays usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import socketio
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from chat_contracts import Envelope, ErrorCode, PresenceChanged, error_body
from chat_contracts.socket import (
    AuthRefreshPayload,
    CursorPayload,
    PresenceQueryPayload,
    SendMessagePayload,
    SyncPayload,
    TypingPayload,
)
from chat_gateway import metrics
from chat_gateway.connections import Connection, LocalConnections
from chat_gateway.errors import EventError
from chat_gateway.ordering import KeyedSequencer
from chat_gateway.presence import Presence
from chat_gateway.rooms import user_room, user_rooms
from chat_gateway.settings import GatewaySettings
from chat_platform.errors import validation_details
from chat_platform.jwt import TokenError, TokenVerifier
from chat_platform.rabbit import Broker, BrokerUnavailable, CommandClient, CommandError
from chat_platform.ratelimit import Rate, TokenBuckets

log = logging.getLogger(__name__)

PRODUCER = "gateway"

Handler = Callable[[Connection, Any], Awaitable[dict[str, Any] | None]]


@dataclass
class Dependencies:
    settings: GatewaySettings
    sio: socketio.AsyncServer
    verifier: TokenVerifier
    commands: CommandClient
    broker: Broker
    presence: Presence
    buckets: TokenBuckets


class Realtime:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.sio = deps.sio
        self.connections = LocalConnections()
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._ephemeral_in_flight = 0
        self._redis_warned_at = float("-inf")
        s = self.settings
        self.rates = {
            "message:send": Rate(s.rate_send, s.rate_send_burst),
            "typing": Rate(s.rate_typing, s.rate_typing_burst),
        }
        self.default_rate = Rate(s.rate_other, s.rate_other_burst)
        self._device_order = KeyedSequencer()
        self._sends_in_flight = 0

    # --- wiring ---------------------------------------------------------------------------

    def register(self) -> None:
        sio = self.sio
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        events: dict[str, tuple[type[BaseModel], Handler]] = {
            "message:send": (SendMessagePayload, self.send_message),
            "message:delivered": (CursorPayload, self.delivered),
            "conversation:read": (CursorPayload, self.read),
            "typing": (TypingPayload, self.typing),
            "sync": (SyncPayload, self.sync),
            "presence:query": (PresenceQueryPayload, self.presence_query),
            "auth:refresh": (AuthRefreshPayload, self.auth_refresh),
        }
        for name, (model, handler) in events.items():
            sio.on(name, self._event(name, model, handler, ordered=name == "message:send"))
        sio.on("*", self.on_unknown)

    def _event(
        self, name: str, model: type[BaseModel], handler: Handler, *, ordered: bool = False
    ) -> Callable[..., Awaitable[dict[str, Any]]]:
        """The Socket.IO handler of one client event.

        `ordered`: one device's events of this kind are handled one after the other, in
        the order the device sent them (the library runs each event in a task of its own,
        so two quick sends could otherwise be stored the other way round).
        """

        async def on_event(sid: str, *args: Any) -> dict[str, Any]:
            if ordered:
                # Nothing is awaited before this: the sequencer relies on arrival order.
                return await self._device_order.run(sid, lambda: handle(sid, *args))
            return await handle(sid, *args)

        async def handle(sid: str, *args: Any) -> dict[str, Any]:
            metrics.EVENTS.labels("in", name).inc()
            self.in_flight += 1
            self._idle.clear()
            try:
                connection = self.connections.get(sid)
                if connection is None:
                    raise EventError(ErrorCode.UNAUTHORIZED, "Not connected.")
                payload = self._parse(model, args)
                await self._take_token(connection.user_id, name)
                return {"ok": True, **(await handler(connection, payload) or {})}
            except EventError as exc:
                metrics.ERRORS.labels(name, exc.code.value).inc()
                return exc.ack()
            except CommandError as exc:
                metrics.ERRORS.labels(name, exc.code.value).inc()
                return {"ok": False, **error_body(exc.code, exc.message, exc.details)}
            except RedisError as exc:
                # Redis down or restarting (presence lives there): a fact, not a crash.
                self._warn_redis(exc)
                metrics.ERRORS.labels(name, ErrorCode.UNAVAILABLE.value).inc()
                return {"ok": False, **error_body(ErrorCode.UNAVAILABLE, "Try again shortly.")}
            except Exception:
                log.exception("event handler failed", extra={"event": name})
                metrics.ERRORS.labels(name, "internal").inc()
                return {"ok": False, **error_body(ErrorCode.INTERNAL, "Internal error.")}
            finally:
                self.in_flight -= 1
                if not self.in_flight:
                    self._idle.set()

        return on_event

    def _parse(self, model: type[BaseModel], args: tuple[Any, ...]) -> Any:
        if len(args) != 1:
            raise EventError(ErrorCode.VALIDATION_ERROR, "The event takes one object as payload.")
        data = args[0]
        if not isinstance(data, dict):
            raise EventError(ErrorCode.VALIDATION_ERROR, "The payload must be a JSON object.")
        try:
            size = len(json.dumps(data, separators=(",", ":")))
        except (TypeError, ValueError):
            raise EventError(ErrorCode.VALIDATION_ERROR, "The payload must be JSON.") from None
        if size > self.settings.max_event_bytes:
            raise EventError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                "The payload is too large.",
                {"max_bytes": self.settings.max_event_bytes},
            )
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise EventError(
                ErrorCode.VALIDATION_ERROR,
                "The payload is not valid.",
                validation_details(list(exc.errors())),
            ) from None

    async def _take_token(self, user_id: str, event: str) -> None:
        try:
            decision = await self.deps.buckets.take(
                f"{user_id}:{event}", self.rates.get(event, self.default_rate)
            )
        except RedisError as exc:
            # The buckets live in Redis. While it is unreachable events go through
            # unlimited rather than fail: a send needs only the message service.
            self._warn_redis(exc)
            return
        if not decision.allowed:
            metrics.RATE_LIMITED.labels(event).inc()
            retry = max(1, int(decision.retry_after + 0.999))
            raise EventError(
                ErrorCode.RATE_LIMITED, "Too many events; slow down.", {"retry_after": retry}
            )

    def _warn_redis(self, exc: Exception) -> None:
        # Once in a while, not once per event: an outage must not flood the log.
        now = time.monotonic()
        if now - self._redis_warned_at >= 10:
            self._redis_warned_at = now
            log.warning("redis unavailable", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})

    async def on_unknown(self, event: Any, sid: str, *args: Any) -> dict[str, Any]:
        metrics.EVENTS.labels("in", "unknown").inc()
        # A raw packet can name its event with any JSON value, not only a string.
        return EventError(ErrorCode.NOT_FOUND, f"Unknown event {str(event)[:64]!r}.").ack()

    # --- connection lifecycle ---------------------------------------------------------------

    def _is_client_event(self, sid: str) -> bool:
        """True when a lifecycle handler was reached by a client event of the same name.

        Socket.IO dispatches an event a client names "connect" or "disconnect" to the
        lifecycle handlers. The real calls come while the socket is still pending (not
        yet, or no longer, connected); a client event only comes from a connected one.
        """
        return bool(self.sio.manager.is_connected(sid, "/"))

    async def on_connect(
        self, sid: str, environ: Any = None, auth: Any = None, *extra: Any
    ) -> dict[str, Any] | None:
        if self._is_client_event(sid):
            return await self.on_unknown("connect", sid)
        if self.draining:
            raise socketio.exceptions.ConnectionRefusedError(
                "unavailable", error_body(ErrorCode.UNAVAILABLE, "This gateway is shutting down.")
            )
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            claims = await self.deps.verifier.verify(token)
        except TokenError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized", error_body(ErrorCode.UNAUTHORIZED, f"Access token rejected: {exc}.")
            ) from None
        self.connections.add(Connection(sid, claims.sub, float(claims.exp)))
        await self.sio.enter_room(sid, user_room(claims.sub))
        metrics.CONNECTIONS.set(len(self.connections))
        try:
            if await self.deps.presence.connected(claims.sub, sid):
                await self._publish_presence(claims.sub, online=True, last_seen=None)
        except Exception:
            # Presence is best effort: a Redis hiccup must not refuse the connection.
            log.warning("presence update failed on connect", exc_info=True)
        return None

    async def on_disconnect(
        self, sid: str, reason: Any = None, *extra: Any
    ) -> dict[str, Any] | None:
        if self._is_client_event(sid):
            return await self.on_unknown("disconnect", sid)
        connection = self.connections.pop(sid)
        metrics.CONNECTIONS.set(len(self.connections))
        if connection is None:
            return None
        for conversation_id in connection.cancel_typing():
            self._typing_stopped(connection, conversation_id)
        try:
            last_seen = await self.deps.presence.disconnected(connection.user_id, sid)
            if last_seen is not None:
                await self._publish_presence(connection.user_id, online=False, last_seen=last_seen)
        except Exception:
            log.warning("presence update failed on disconnect", exc_info=True)
        return None

    async def _publish_presence(self, user_id: str, *, online: bool, last_seen: Any) -> None:
        event = PresenceChanged(user_id=user_id, online=online, last_seen=last_seen)
        try:
            await self.deps.broker.publish(Envelope.wrap(event, PRODUCER))
        except BrokerUnavailable:
            metrics.DROPPED_SIGNALS.labels("presence").inc()

    # --- client events ----------------------------------------------------------------------

    async def _command(self, name: str, payload: dict[str, Any]) -> Any:
        return await self.deps.commands.call(
            name, payload, timeout=self.settings.command_timeout_seconds
        )

    async def send_message(self, c: Connection, p: SendMessagePayload) -> dict[str, Any]:
        if self._sends_in_flight >= self.settings.max_sends_in_flight:
            # Overloaded: a fast answer the client can retry beats a send that waits behind
            # seconds of queued work and times out anyway.
            metrics.SHED_SENDS.inc()
            raise EventError(
                ErrorCode.UNAVAILABLE, "The service is busy; retry shortly.", {"retry_after": 1}
            )
        self._sends_in_flight += 1
        try:
            result = await self._command("message.send", {"sender_id": c.user_id, **p.model_dump()})
        finally:
            self._sends_in_flight -= 1
        timer = c.typing_timers.pop(p.conversation_id, None)
        if timer is not None:
            # Sending ends typing now; the pending automatic stop must not say it again.
            timer.cancel()
            self._typing_stopped(c, p.conversation_id)
        return {"message": result["message"]}

    async def delivered(self, c: Connection, p: CursorPayload) -> None:
        await self._move_cursor(c, p, "delivered")

    async def read(self, c: Connection, p: CursorPayload) -> None:
        await self._move_cursor(c, p, "read")

    async def _move_cursor(self, c: Connection, p: CursorPayload, kind: str) -> None:
        await self._command(
            "cursor.move",
            {
                "user_id": c.user_id,
                "conversation_id": p.conversation_id,
                "seq": p.seq,
                "kind": kind,
            },
        )

    async def sync(self, c: Connection, p: SyncPayload) -> dict[str, Any]:
        result: dict[str, Any] = await self._command(
            "sync", {"user_id": c.user_id, "request": p.model_dump(mode="json", exclude_none=True)}
        )
        metrics.SYNC_REQUESTS.inc()
        metrics.SYNC_MESSAGES.observe(sum(len(x["messages"]) for x in result["conversations"]))
        return result

    async def presence_query(self, c: Connection, p: PresenceQueryPayload) -> dict[str, Any]:
        contacts = set(await self._contacts(c.user_id))
        visible = [u for u in dict.fromkeys(p.user_ids) if u in contacts or u == c.user_id]
        states = await self.deps.presence.states(visible) if visible else {}
        presence = {}
        for user_id in p.user_ids:
            state = states.get(user_id)
            presence[user_id] = {
                # Users who share no conversation with the caller look offline to them.
                "online": bool(state and state.online),
                "last_seen": state.last_seen.isoformat() if state and state.last_seen else None,
            }
        return {"presence": presence}

    async def _contacts(self, user_id: str) -> list[str]:
        result = await self._command("user.contacts", {"user_id": user_id})
        contacts: list[str] = result["user_ids"]
        return contacts

    async def typing(self, c: Connection, p: TypingPayload) -> None:
        result = await self._command(
            "conversation.members", {"user_id": c.user_id, "conversation_id": p.conversation_id}
        )
        members: list[str] = result["member_ids"]
        timer = c.typing_timers.pop(p.conversation_id, None)
        if timer is not None:
            timer.cancel()
        if p.is_typing:
            # Without a stop from the client, typing ends by itself.
            loop = asyncio.get_running_loop()
            c.typing_timers[p.conversation_id] = loop.call_later(
                self.settings.typing_timeout_seconds,
                self._typing_stopped,
                c,
                p.conversation_id,
                members,
            )
        await self._emit_typing(c, p.conversation_id, p.is_typing, members)

    def _typing_stopped(
        self, c: Connection, conversation_id: str, members: list[str] | None = None
    ) -> None:
        c.typing_timers.pop(conversation_id, None)
        task = asyncio.get_running_loop().create_task(
            self._emit_typing(c, conversation_id, False, members)
        )
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _emit_typing(
        self, c: Connection, conversation_id: str, is_typing: bool, members: list[str] | None
    ) -> None:
        # Ephemeral signals are the first thing shed under load.
        if self._ephemeral_in_flight >= self.settings.ephemeral_inflight_max:
            metrics.DROPPED_SIGNALS.labels("typing").inc()
            return
        self._ephemeral_in_flight += 1
        try:
            if members is None:
                result = await self._command(
                    "conversation.members",
                    {"user_id": c.user_id, "conversation_id": conversation_id},
                )
                members = result["member_ids"]
            others = [m for m in members if m != c.user_id]
            if others:
                payload = {
                    "conversation_id": conversation_id,
                    "user_id": c.user_id,
                    "is_typing": is_typing,
                }
                await self.sio.emit("typing", payload, to=user_rooms(others))
                metrics.EVENTS.labels("out", "typing").inc()
        except Exception:
            metrics.DROPPED_SIGNALS.labels("typing").inc()
        finally:
            self._ephemeral_in_flight -= 1

    async def auth_refresh(self, c: Connection, p: AuthRefreshPayload) -> None:
        try:
            claims = await self.deps.verifier.verify(p.token)
        except TokenError as exc:
            raise EventError(ErrorCode.UNAUTHORIZED, f"Access token rejected: {exc}.") from None
        if claims.sub != c.user_id:
            raise EventError(ErrorCode.FORBIDDEN, "The token belongs to another user.")
        c.token_expires_at = float(claims.exp)

    # --- housekeeping -------------------------------------------------------------------------

    async def close_expired(self) -> int:
        """Disconnect sockets whose token expired more than the grace period ago."""
        cutoff = time.time() - self.settings.token_grace_seconds
        expired = [c for c in self.connections.all() if c.token_expires_at < cutoff]
        for connection in expired:
            await self.sio.disconnect(connection.sid)
        return len(expired)

    async def renew_presence(self) -> None:
        restored = await self.deps.presence.renew(
            (c.user_id, c.sid) for c in self.connections.all()
        )
        for user_id, sid in restored:
            if self.connections.get(sid) is None:
                # Closed while being renewed: its disconnect may have run first, so the
                # renewal brought it back; take it out again rather than leave a ghost.
                await self.deps.presence.disconnected(user_id, sid)

    async def sweep_presence(self) -> None:
        for user_id, last_seen in await self.deps.presence.sweep():
            await self._publish_presence(user_id, online=False, last_seen=last_seen)

    async def drain(self, seconds: float, batches: int = 20) -> None:
        """Refuse new sockets and move the connected ones away in batches.

        Spreading the disconnects over `seconds` lets clients reconnect to
        other instances without a thundering herd; sends in flight finish first.
        """
        self.draining = True
        sids = [c.sid for c in self.connections.all()]
        per_batch = max(1, -(-len(sids) // batches))
        pause = seconds / batches
        for start in range(0, len(sids), per_batch):
            await asyncio.gather(
                *(self.sio.disconnect(sid) for sid in sids[start : start + per_batch]),
                return_exceptions=True,
            )
            await asyncio.sleep(pause)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), seconds)
