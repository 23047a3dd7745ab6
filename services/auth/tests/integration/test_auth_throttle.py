"""Login throttling on a real Redis: per account and per client address, within a window."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from chat_auth.throttle import LoginThrottle
from chat_contracts import ErrorCode
from chat_platform.errors import ApiError


@pytest.fixture
def throttle(redis_client: Redis, namespace: str) -> LoginThrottle:
    return LoginThrottle(redis_client, f"{namespace}:auth", per_account=3, per_address=5, window=60)


async def fail(
    throttle: LoginThrottle, account: str | None, ident: str, address: str, times: int
) -> None:
    for _ in range(times):
        await throttle.reserve(account, ident, address)


async def assert_throttled(
    throttle: LoginThrottle, account: str | None, ident: str, address: str
) -> int:
    with pytest.raises(ApiError) as caught:
        await throttle.reserve(account, ident, address)
    error = caught.value
    assert error.code is ErrorCode.RATE_LIMITED
    assert error.status == 429
    assert error.details is not None
    retry_after = int(error.details["retry_after"])
    assert error.headers == {"Retry-After": str(retry_after)}
    return retry_after


async def test_account_is_throttled_whichever_identifier_from_any_address(
    throttle: LoginThrottle,
) -> None:
    await fail(throttle, "id-alice", "Alice", "10.0.0.1", 2)
    await fail(throttle, "id-alice", "alice@example.com", "10.0.0.2", 1)
    retry_after = await assert_throttled(throttle, "id-alice", "ALICE", "10.0.0.3")
    assert 1 <= retry_after <= 60
    await throttle.reserve("id-bob", "bob", "10.0.0.1")


async def test_unknown_identifier_is_throttled_by_itself(throttle: LoginThrottle) -> None:
    await fail(throttle, None, "Nobody", "10.0.0.1", 3)
    await assert_throttled(throttle, None, "nobody", "10.0.0.2")
    await throttle.reserve(None, "somebody-else", "10.0.0.1")


async def test_parallel_burst_reserves_at_most_the_limit(throttle: LoginThrottle) -> None:
    results = await asyncio.gather(
        *(throttle.reserve("id-burst", "burst", f"10.1.0.{i}") for i in range(40)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 3
    assert all(isinstance(r, ApiError) for r in results if isinstance(r, BaseException))


async def test_address_is_throttled_across_accounts(throttle: LoginThrottle) -> None:
    # Password spraying: one wrong guess for each of many users from one address.
    for i in range(5):
        await fail(throttle, f"id-user{i}", f"user{i}", "10.0.0.9", 1)
    await assert_throttled(throttle, "id-someone-new", "someone-new", "10.0.0.9")
    await throttle.reserve("id-someone-new", "someone-new", "10.0.0.10")


async def test_success_clears_the_account_and_gives_the_address_its_attempt_back(
    throttle: LoginThrottle,
) -> None:
    await fail(throttle, "id-carol", "carol", "10.0.0.7", 2)
    await throttle.succeeded(await throttle.reserve("id-carol", "carol", "10.0.0.7"))
    await fail(throttle, "id-carol", "carol", "10.0.0.7", 2)
    await throttle.reserve("id-carol", "carol", "10.0.0.7")
    # The address holds five failed attempts now: its limit.
    await assert_throttled(throttle, "id-erin", "erin", "10.0.0.7")


async def test_failures_are_forgotten_after_the_window(redis_client: Redis, namespace: str) -> None:
    throttle = LoginThrottle(
        redis_client, f"{namespace}:auth", per_account=2, per_address=100, window=1
    )
    await fail(throttle, "id-frank", "frank", "10.0.0.5", 2)
    assert await assert_throttled(throttle, "id-frank", "frank", "10.0.0.5") == 1
    await asyncio.sleep(1.2)
    await throttle.reserve("id-frank", "frank", "10.0.0.5")


async def test_window_is_not_extended_by_further_failures(
    redis_client: Redis, throttle: LoginThrottle
) -> None:
    await fail(throttle, "id-grace", "grace", "10.0.0.4", 1)
    key = throttle.account_key("id-grace", "grace")
    first_ttl = await redis_client.ttl(key)
    await redis_client.expire(key, 30)
    await throttle.reserve("id-grace", "grace", "10.0.0.4")
    # Counted within the first failure's window; a steady trickle cannot keep it open forever.
    assert 0 < await redis_client.ttl(key) <= 30 < first_ttl


async def test_redis_down_refuses_the_attempt_as_unavailable(namespace: str) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    throttle = LoginThrottle(dead, f"{namespace}:auth", per_account=3, per_address=5, window=60)
    with pytest.raises(ApiError) as caught:
        await throttle.reserve("id-h", "h", "10.0.0.1")
    assert caught.value.code is ErrorCode.UNAVAILABLE
    assert caught.value.details == {"retry_after": 1}
    await dead.aclose()
