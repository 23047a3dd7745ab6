"""Token buckets in Redis, shared by every instance of a service, and the per-user budgets on them."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from chat_contracts.errors import rate_limited

log = logging.getLogger(__name__)

RATE_LIMITED = Counter(
    "chat_rate_limited_total", "Actions refused because the user's budget was spent.", ["action"]
)

# Time comes from Redis so that instances with skewed clocks share one bucket fairly.
_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring(wait)}
"""


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int

    @classmethod
    def parse(cls, value: object) -> object:
        """`"20/60"`: 20 actions a second, bursts of up to 60 (how a rate is configured)."""
        if isinstance(value, str):
            per_second, sep, burst = value.partition("/")
            if not sep:
                raise ValueError("a rate is written per_second/burst, e.g. 20/60")
            return cls(float(per_second), int(burst))
        return value


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float


class TokenBuckets:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(_BUCKET_LUA)

    async def take(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        allowed, wait = await self._script(
            keys=[f"{self.prefix}:{key}"], args=[rate.per_second, rate.burst, cost]
        )
        return Decision(bool(int(allowed)), float(wait))


class Budgets:
    """Per-user budgets by action, shared by every instance and by every door.

    An action costs the same bucket (`<user>:<action>`) whether it comes over REST
    or the socket, so the two cannot be played against each other. While Redis is
    unreachable actions go through unbudgeted rather than fail: the work itself
    does not need Redis, and the outage is logged once in a while, not per action.
    """

    def __init__(
        self,
        buckets: TokenBuckets,
        rates: Mapping[str, Rate],
        default: Rate,
        *,
        warn_every: float = 10.0,
    ) -> None:
        self.buckets = buckets
        self.rates = dict(rates)
        self.default = default
        self.warn_every = warn_every
        self._warned_at = float("-inf")

    def rate_of(self, action: str) -> Rate:
        return self.rates.get(action, self.default)

    async def spend(self, user_id: str, action: str, cost: int = 1) -> None:
        """Take from the user's budget for `action`; `rate_limited` (429) when it is spent."""
        try:
            decision = await self.buckets.take(f"{user_id}:{action}", self.rate_of(action), cost)
        except RedisError as exc:
            self.redis_unavailable(exc)
            return
        if not decision.allowed:
            RATE_LIMITED.labels(action).inc()
            raise rate_limited(decision.retry_after, "Too many requests; slow down.")

    def redis_unavailable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= self.warn_every:
            self._warned_at = now
            log.warning("redis unavailable", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
