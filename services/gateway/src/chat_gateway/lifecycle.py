"""The life of this instance's sockets: connect, disconnect, presence, expiry and draining."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import socketio
from redis.exceptions import RedisError

from chat_contracts import Envelope, PresenceChanged
from chat_contracts.errors import ApiError, ErrorCode
from chat_gateway import metrics
from chat_gateway.connections import Connection, LocalConnections
from chat_gateway.dispatch import Dispatcher
from chat_gateway.presence import Presence, PresenceChange
from chat_gateway.rooms import user_room
from chat_gateway.typing_signals import TypingSignals
from chat_platform.amqp import Broker, BrokerUnavailable
from chat_platform.group_commit import GroupCommit
from chat_platform.jwt import TokenError, TokenVerifier

log = logging.getLogger(__name__)

PRODUCER = "gateway"


@dataclass
class Lifecycle:
    sio: socketio.AsyncServer
    connections: LocalConnections
    dispatcher: Dispatcher
    verifier: TokenVerifier
    presence: Presence
    broker: Broker
    typing: TypingSignals
    token_grace_seconds: float
    presence_batch: int = 500
    draining: bool = field(default=False, init=False)
    # Connects and disconnects reach Redis in batches: a storm costs a few round trips.
    # `presence_changes.run()` must run (in the service's task group) while in use.
    presence_changes: GroupCommit[PresenceChange, bool | datetime | None] = field(init=False)

    def __post_init__(self) -> None:
        self.presence_changes = GroupCommit(
            self.presence.apply,
            name="presence",
            max_batch=self.presence_batch,
            max_waiting=100 * self.presence_batch,
            failure_message="Presence could not be recorded.",
            expected_errors=(RedisError,),
        )

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
            return await self.dispatcher.unknown("connect", sid)
        if self.draining:
            raise socketio.exceptions.ConnectionRefusedError(
                "unavailable",
                ApiError(ErrorCode.UNAVAILABLE, "This gateway is shutting down.").body(),
            )
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            claims = await self.verifier.verify(token)
        except TokenError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized",
                ApiError(ErrorCode.UNAUTHORIZED, f"Access token rejected: {exc}.").body(),
            ) from None
        self.connections.add(Connection(sid, claims.sub, float(claims.exp)))
        await self.sio.enter_room(sid, user_room(claims.sub))
        metrics.CONNECTIONS.set(len(self.connections))
        try:
            if await self.presence_changes.submit(PresenceChange(claims.sub, sid, online=True)):
                await self.publish_presence(claims.sub, online=True, last_seen=None)
        except Exception:
            # Presence is best effort: a Redis hiccup must not refuse the connection.
            log.warning("presence update failed on connect", exc_info=True)
        return None

    async def on_disconnect(
        self, sid: str, reason: Any = None, *extra: Any
    ) -> dict[str, Any] | None:
        if self._is_client_event(sid):
            return await self.dispatcher.unknown("disconnect", sid)
        connection = self.connections.pop(sid)
        metrics.CONNECTIONS.set(len(self.connections))
        if connection is None:
            return None
        self.typing.disconnected(connection)
        try:
            change = PresenceChange(connection.user_id, sid, online=False)
            last_seen = await self.presence_changes.submit(change)
            if isinstance(last_seen, datetime):
                await self.publish_presence(connection.user_id, online=False, last_seen=last_seen)
        except Exception:
            log.warning("presence update failed on disconnect", exc_info=True)
        return None

    async def publish_presence(
        self, user_id: str, *, online: bool, last_seen: datetime | None
    ) -> None:
        event = PresenceChanged(user_id=user_id, online=online, last_seen=last_seen)
        try:
            await self.broker.publish(Envelope.wrap(event, PRODUCER))
        except BrokerUnavailable:
            metrics.DROPPED_SIGNALS.labels("presence").inc()

    async def ask_to_sync(self, reason: str) -> None:
        """Tell every socket of this instance that it may have missed events (`sync:required`)."""
        # Local sockets only: each instance knows what it may have missed itself.
        await self.sio.manager.emit(
            "sync:required", {"reason": reason}, namespace="/", ignore_queue=True
        )
        metrics.SYNC_REQUIRED.labels(reason).inc()
        log.info(
            "sockets asked to sync", extra={"reason": reason, "sockets": len(self.connections)}
        )

    async def close_expired(self) -> int:
        """Disconnect sockets whose token expired more than the grace period ago."""
        cutoff = time.time() - self.token_grace_seconds
        expired = [c for c in self.connections.all() if c.token_expires_at < cutoff]
        for connection in expired:
            await self.sio.disconnect(connection.sid)
        return len(expired)

    async def renew_presence(self) -> None:
        restored = await self.presence.renew((c.user_id, c.sid) for c in self.connections.all())
        for user_id, sid in restored:
            if self.connections.get(sid) is None:
                # Closed while being renewed: its disconnect may have run first, so the
                # renewal brought it back; take it out again rather than leave a ghost.
                await self.presence.disconnected(user_id, sid)

    async def sweep_presence(self) -> None:
        for user_id, last_seen in await self.presence.sweep():
            await self.publish_presence(user_id, online=False, last_seen=last_seen)

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
            await asyncio.wait_for(self.dispatcher.idle.wait(), seconds)
