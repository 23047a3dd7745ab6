"""Login throttling: attempts counted in Redis per account and per client address.

An attempt is reserved before the password is checked, by one script that
refuses when a counter is at its limit and otherwise counts the attempt on every
counter at once: a parallel burst cannot slip past a check that the others have
not yet counted. A successful login gives its reservation back (and clears the
account's count); a failed one keeps it.

The account counter is the account's id whichever identifier (username or
email) named it, so the two cannot be spent separately; an identifier that names
no account has a counter of its own, so it is throttled all the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chat_contracts.errors import ApiError, rate_limited, unavailable

log = logging.getLogger(__name__)

# KEYS: the counters; ARGV[1]: the window in seconds, ARGV[1 + i]: the limit of KEYS[i].
_RESERVE_LUA = """
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i + 1]) then
    return {0, redis.call('TTL', key)}
  end
end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  -- The window starts at the first attempt; later ones do not extend it.
  if redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, ARGV[1])
  end
end
return {1, 0}
"""

# KEYS[1]: the account's counter (cleared), KEYS[2]: the address's (given its attempt back).
_RELEASE_LUA = """
redis.call('DEL', KEYS[1])
local count = tonumber(redis.call('GET', KEYS[2]) or '0')
if count > 0 then
  redis.call('DECR', KEYS[2])
end
return count
"""


@dataclass(frozen=True)
class Reservation:
    account_key: str
    address_key: str


class LoginThrottle:
    def __init__(
        self, redis: Redis, prefix: str, *, per_account: int, per_address: int, window: int
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.per_account = per_account
        self.per_address = per_address
        self.window = window
        self._reserve = redis.register_script(_RESERVE_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    def account_key(self, account_id: str | None, identifier: str) -> str:
        if account_id is not None:
            return f"{self.prefix}:login-fail:account:{account_id}"
        return f"{self.prefix}:login-fail:unknown:{identifier.lower()}"

    def address_key(self, address: str) -> str:
        return f"{self.prefix}:login-fail:addr:{address}"

    async def reserve(self, account_id: str | None, identifier: str, address: str) -> Reservation:
        """Count one attempt, or raise 429 (with `retry_after`) when a counter is at its limit."""
        reservation = Reservation(
            self.account_key(account_id, identifier), self.address_key(address)
        )
        try:
            allowed, ttl = await self._reserve(
                keys=[reservation.account_key, reservation.address_key],
                args=[self.window, self.per_account, self.per_address],
            )
        except RedisError as exc:
            # Without the counters a password cannot be checked safely: refuse, retryably.
            raise self._unavailable(exc) from None
        if not int(allowed):
            raise rate_limited(max(int(ttl), 1), "Too many failed logins; try again later.")
        return reservation

    async def succeeded(self, reservation: Reservation) -> None:
        try:
            await self._release(keys=[reservation.account_key, reservation.address_key])
        except RedisError as exc:
            # The login stands; the count it leaves behind expires with its window.
            log.warning("login throttle not released", extra={"error": str(exc)[:200]})

    @staticmethod
    def _unavailable(exc: Exception) -> ApiError:
        log.warning("login throttle unavailable", extra={"error": str(exc)[:200]})
        return unavailable("Logins are unavailable for a moment; try again.", retry_after=1)
