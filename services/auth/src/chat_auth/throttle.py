"""Login throttling: failed attempts counted in Redis per username and per client address."""

from __future__ import annotations

from redis.asyncio import Redis

from chat_contracts.errors import rate_limited


class LoginThrottle:
    def __init__(
        self, redis: Redis, prefix: str, *, per_username: int, per_address: int, window: int
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.per_username = per_username
        self.per_address = per_address
        self.window = window

    def _keys(self, username: str, address: str) -> list[tuple[str, int]]:
        return [
            (f"{self.prefix}:login-fail:user:{username.lower()}", self.per_username),
            (f"{self.prefix}:login-fail:addr:{address}", self.per_address),
        ]

    async def check(self, username: str, address: str) -> None:
        """Raise 429 (with `retry_after`) while either counter is at its limit."""
        keys = self._keys(username, address)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, _ in keys:
                pipe.get(key)
                pipe.ttl(key)
            values = await pipe.execute()
        for i, (_, limit) in enumerate(keys):
            count, ttl = values[2 * i], values[2 * i + 1]
            if count is not None and int(count) >= limit:
                raise rate_limited(max(ttl, 1))

    async def failed(self, username: str, address: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, _ in self._keys(username, address):
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)
            await pipe.execute()

    async def succeeded(self, username: str) -> None:
        await self.redis.delete(f"{self.prefix}:login-fail:user:{username.lower()}")
