"""Presence in Redis: a user is online while any of their connections is alive anywhere.

Each connection is an entry with an expiry that its gateway renews. A gateway
that crashes stops renewing, and whichever gateway sweeps next expires its
connections and reports their users offline: within `ttl + sweep interval`.
Clocks come from Redis, so gateways with skewed clocks agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

# KEYS: conns (zset of sid -> expiry), expiry index (zset of "user|sid" -> expiry), last_seen hash
# ARGV: sid, user, ttl. Returns 1 when this is the user's only live connection.
_CONNECT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local expires = now + tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], expires, ARGV[1])
redis.call('ZADD', KEYS[2], expires, ARGV[2] .. '|' .. ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) * 2)
if redis.call('ZCARD', KEYS[1]) == 1 then return 1 end
return 0
"""

# Returns the last-seen time (seconds) when the user has no live connection left, else 0.
_DISCONNECT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2] .. '|' .. ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if removed == 1 and redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[3], ARGV[2], tostring(now))
  return tostring(now)
end
return '0'
"""

# KEYS: expiry index, last_seen hash; ARGV: conns key prefix, batch size.
# Returns a flat list of user, last_seen for users whose last connection expired.
_SWEEP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local offline = {}
for _, entry in ipairs(expired) do
  local sep = string.find(entry, '|', 1, true)
  local user = string.sub(entry, 1, sep - 1)
  local sid = string.sub(entry, sep + 1)
  redis.call('ZREM', KEYS[1], entry)
  local conns = ARGV[1] .. user
  local removed = redis.call('ZREM', conns, sid)
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', now)
  if removed == 1 and redis.call('ZCARD', conns) == 0 then
    redis.call('HSET', KEYS[2], user, tostring(now))
    table.insert(offline, user)
    table.insert(offline, tostring(now))
  end
end
return offline
"""


@dataclass(frozen=True)
class PresenceChange:
    """A connection that came (`online`) or went."""

    user_id: str
    sid: str
    online: bool


@dataclass(frozen=True)
class PresenceState:
    online: bool
    last_seen: datetime | None


def _time(value: str | bytes | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(float(value), UTC)


def _went_offline(result: object) -> datetime | None:
    return None if result in ("0", b"0", 0) else _time(result)  # type: ignore[arg-type]


class Presence:
    def __init__(self, redis: Redis, prefix: str, ttl_seconds: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl_seconds
        self._expiry = f"{prefix}:expiry"
        self._last_seen = f"{prefix}:last_seen"
        self._connect = redis.register_script(_CONNECT)
        self._disconnect = redis.register_script(_DISCONNECT)
        self._sweep = redis.register_script(_SWEEP)

    async def _now(self) -> float:
        # Redis' clock, to the microsecond like the scripts': whole seconds would count a
        # connection as live for up to a second after it expired.
        seconds, microseconds = await self.redis.time()
        return float(seconds) + microseconds / 1_000_000

    def _conns(self, user_id: str) -> str:
        return f"{self.prefix}:conns:{user_id}"

    async def connected(self, user_id: str, sid: str) -> bool:
        """Record a connection; True if the user just came online."""
        result = await self._connect(
            keys=[self._conns(user_id), self._expiry], args=[sid, user_id, self.ttl]
        )
        return bool(int(result))

    async def disconnected(self, user_id: str, sid: str) -> datetime | None:
        """Forget a connection; the last-seen time if the user just went offline."""
        result = await self._disconnect(
            keys=[self._conns(user_id), self._expiry, self._last_seen], args=[sid, user_id]
        )
        return _went_offline(result)

    async def apply(self, changes: list[PresenceChange]) -> list[bool | datetime | None]:
        """Record many connects and disconnects in one round trip, in order.

        Per change: for a connect, True if the user just came online; for a disconnect,
        the last-seen time if the user just went offline (else None). A storm of
        thousands of connections closing at once costs a few pipelines, not thousands
        of round trips.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            for change in changes:
                if change.online:
                    await self._connect(
                        keys=[self._conns(change.user_id), self._expiry],
                        args=[change.sid, change.user_id, self.ttl],
                        client=pipe,
                    )
                else:
                    await self._disconnect(
                        keys=[self._conns(change.user_id), self._expiry, self._last_seen],
                        args=[change.sid, change.user_id],
                        client=pipe,
                    )
            results = await pipe.execute()
        return [
            bool(int(result)) if change.online else _went_offline(result)
            for change, result in zip(changes, results, strict=True)
        ]

    async def renew(self, connections: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Push back the expiry of this instance's live connections (user, sid).

        An entry found missing is added back: Redis lost it (a restart without
        persistence), yet the connection is alive. Those are returned, so that the
        caller can take back any whose connection closed while this ran.
        """
        expires = await self._now() + self.ttl
        pending = list(connections)
        restored: list[tuple[str, str]] = []
        for start in range(0, len(pending), 500):
            batch = pending[start : start + 500]
            async with self.redis.pipeline(transaction=False) as pipe:
                for user_id, sid in batch:
                    pipe.zadd(self._conns(user_id), {sid: expires})
                    pipe.zadd(self._expiry, {f"{user_id}|{sid}": expires})
                    pipe.expire(self._conns(user_id), self.ttl * 2)
                results = await pipe.execute()
            # ZADD answers how many members it added rather than updated.
            restored += [pair for pair, added in zip(batch, results[::3], strict=True) if added]
        return restored

    async def sweep(self, batch: int = 500) -> list[tuple[str, datetime]]:
        """Expire connections nobody renewed; the users that left with them."""
        flat = await self._sweep(
            keys=[self._expiry, self._last_seen], args=[f"{self.prefix}:conns:", batch]
        )
        items = [x.decode() if isinstance(x, bytes) else str(x) for x in flat]
        return [
            (items[i], _time(items[i + 1]) or datetime.now(UTC)) for i in range(0, len(items), 2)
        ]

    async def states(self, user_ids: list[str]) -> dict[str, PresenceState]:
        now = await self._now()
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.zcount(self._conns(user_id), now, "+inf")
            pipe.hmget(self._last_seen, user_ids)
            *counts, seen = await pipe.execute()
        return {
            user_id: PresenceState(online=count > 0, last_seen=_time(last))
            for user_id, count, last in zip(user_ids, counts, seen, strict=True)
        }
