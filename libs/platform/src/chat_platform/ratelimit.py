"""Token buckets in Redis, shared by every instance of a service."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

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
