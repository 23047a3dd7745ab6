"""The Socket.IO Redis manager, with heartbeats that prove the subscriber is alive.

A Redis subscriber can die quietly (a restart, a half-open connection) and
leave an instance that still publishes but no longer receives. Each instance
publishes a heartbeat on the Socket.IO channel and listens for its own: if
none comes back in time it reports not ready and forces the subscriber to
reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import socketio
from redis.asyncio import Redis

log = logging.getLogger(__name__)

_HEARTBEAT = "chat-heartbeat"

# Marks an event as emitted and publishes the emit to every instance, atomically: one
# round trip, and never one without the other.
_EMIT_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
  return 1
end
return 0
"""


class HeartbeatRedisManager(socketio.AsyncRedisManager):
    def __init__(self, url: str, channel: str, *, interval: float, stale_after: float) -> None:
        super().__init__(url, channel=channel)
        self.interval = interval
        self.stale_after = stale_after
        # When this instance last heard its own heartbeat, and last (re)connected to Redis.
        self.last_heard = float("-inf")
        self.connected_at = time.monotonic()
        self.connected_at_least_once = False
        # Why this instance's sockets may have missed events, until they are told to sync.
        self.missed_reason: str | None = None
        self.on_missed: Callable[[str], Coroutine[Any, Any, None]] | None = None
        self._catching_up: set[asyncio.Task[None]] = set()

    def _redis_connect(self) -> None:
        super()._redis_connect()
        # A new connection: the listener resubscribing after an error, or a publish after
        # one. Until a heartbeat comes back, the subscription is not known to be there, and
        # emits from other instances published meanwhile are lost: not ready, and once it
        # hears itself again its sockets are told to catch up.
        if self.connected_at_least_once:
            self.missed("redis_reconnected")
        self.connected_at_least_once = True
        self.connected_at = time.monotonic()

    def missed(self, reason: str) -> None:
        """Something published meanwhile may not have reached this instance's sockets."""
        self.missed_reason = self.missed_reason or reason

    async def _listen(self) -> AsyncIterator[Any]:
        # Each frame is parsed here, once: the library takes a parsed message as it is, and a
        # heartbeat is known by its method, whatever the text of other messages says.
        async for raw in super()._listen():
            try:
                data = raw if isinstance(raw, dict) else self.json.loads(raw)
            except (ValueError, TypeError):
                yield raw
                continue
            if isinstance(data, dict) and data.get("method") == _HEARTBEAT:
                if data.get("host_id") == self.host_id:
                    self.last_heard = time.monotonic()
                    self._catch_up()
                continue
            yield data

    def _catch_up(self) -> None:
        """Once the subscription is proven again, ask this instance's sockets to sync.

        In a task of its own: telling thousands of sockets must not hold up the listener.
        """
        reason, self.missed_reason = self.missed_reason, None
        if reason is not None and self.on_missed is not None:
            task = asyncio.get_running_loop().create_task(self.on_missed(reason))
            self._catching_up.add(task)
            task.add_done_callback(self._catching_up.discard)

    async def emit_once(
        self, redis: Redis, seen_key: str, ttl: int, event: str, data: Any, rooms: list[str]
    ) -> bool:
        """Emit to `rooms` on every instance unless `seen_key` is already marked.

        The same message `emit` would publish, but marked and published in one
        script; this instance then delivers it to its own sockets. False if it
        was a duplicate. A crash between the script and the local delivery only
        misses this instance's sockets, which lose their connection with it
        and sync when they reconnect.
        """
        message = {
            "method": "emit",
            "event": event,
            "data": [data],
            "binary": False,
            "namespace": "/",
            "room": rooms,
            "skip_sid": None,
            "callback": None,
            "host_id": self.host_id,
        }
        # EVALSHA, loading the script first if this Redis does not know it yet.
        published = await redis.register_script(_EMIT_ONCE)(
            keys=[seen_key], args=[self.channel, self.json.dumps(message), ttl]
        )
        if not published:
            return False
        await self._handle_emit(message)
        return True

    @property
    def healthy(self) -> bool:
        return (
            self.last_heard >= self.connected_at
            and time.monotonic() - self.last_heard < self.stale_after
        )

    async def check(self) -> None:
        if not self.healthy:
            raise ConnectionError("not hearing its own heartbeats through Redis")

    async def heartbeat_forever(self) -> None:
        while True:
            try:
                await self._publish({"method": _HEARTBEAT, "host_id": self.host_id})
            except Exception as exc:
                log.warning("heartbeat publish failed", extra={"error": str(exc)})
            now = time.monotonic()
            if now - max(self.last_heard, self.connected_at) > self.stale_after and (
                self.pubsub is not None
            ):
                log.warning("redis subscriber silent; reconnecting")
                # Closing the subscription makes the listener fail and resubscribe.
                with contextlib.suppress(Exception):
                    await self.pubsub.aclose()
                self.connected_at = now
            # Not hearing itself: look again soon, since readiness waits on it.
            await asyncio.sleep(self.interval if self.healthy else min(self.interval, 0.5))
