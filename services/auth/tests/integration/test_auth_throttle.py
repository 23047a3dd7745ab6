"""Login throttling on a real Redis: per username and per client address, within a window."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from chat_auth.throttle import LoginThrottle
from chat_contracts import ErrorCode
from chat_platform.errors import ApiError


@pytest.fixture
def throttle(redis_client: Redis, namespace: str) -> LoginThrottle:
    return LoginThrottle(
        redis_client, f"{namespace}:auth", per_username=3, per_address=5, window=60
    )


async def fail(throttle: LoginThrottle, username: str, address: str, times: int) -> None:
    for _ in range(times):
        await throttle.check(username, address)
        await throttle.failed(username, address)


async def assert_throttled(throttle: LoginThrottle, username: str, address: str) -> int:
    with pytest.raises(ApiError) as caught:
        await throttle.check(username, address)
    error = caught.value
    assert error.code is ErrorCode.RATE_LIMITED
    assert error.status == 429
    assert error.details is not None
    retry_after = int(error.details["retry_after"])
    assert error.headers == {"Retry-After": str(retry_after)}
    return retry_after


async def test_username_is_throttled_in_any_case_from_any_address(
    throttle: LoginThrottle,
) -> None:
    await fail(throttle, "Alice", "10.0.0.1", 3)
    retry_after = await assert_throttled(throttle, "alice", "10.0.0.2")
    assert 1 <= retry_after <= 60
    await assert_throttled(throttle, "ALICE", "10.0.0.3")
    await throttle.check("bob", "10.0.0.1")


async def test_address_is_throttled_across_usernames(throttle: LoginThrottle) -> None:
    # Password spraying: one wrong guess for each of many users from one address.
    for i in range(5):
        await fail(throttle, f"user{i}", "10.0.0.9", 1)
    await assert_throttled(throttle, "someone-new", "10.0.0.9")
    await throttle.check("someone-new", "10.0.0.10")


async def test_success_clears_the_username_count_only(throttle: LoginThrottle) -> None:
    await fail(throttle, "carol", "10.0.0.7", 2)
    await throttle.succeeded("CAROL")
    await fail(throttle, "carol", "10.0.0.7", 2)
    await throttle.check("carol", "10.0.0.7")
    # The address keeps its four failures: one more reaches its limit of five.
    await fail(throttle, "dave", "10.0.0.7", 1)
    await assert_throttled(throttle, "erin", "10.0.0.7")


async def test_failures_are_forgotten_after_the_window(redis_client: Redis, namespace: str) -> None:
    throttle = LoginThrottle(
        redis_client, f"{namespace}:auth", per_username=2, per_address=100, window=1
    )
    await fail(throttle, "frank", "10.0.0.5", 2)
    assert await assert_throttled(throttle, "frank", "10.0.0.5") == 1
    await asyncio.sleep(1.2)
    await throttle.check("frank", "10.0.0.5")


async def test_window_is_not_extended_by_further_failures(
    redis_client: Redis, namespace: str, throttle: LoginThrottle
) -> None:
    await fail(throttle, "grace", "10.0.0.4", 1)
    key = f"{namespace}:auth:login-fail:user:grace"
    first_ttl = await redis_client.ttl(key)
    await redis_client.expire(key, 30)
    await throttle.failed("grace", "10.0.0.4")
    # Counted within the first failure's window; a steady trickle cannot keep it open forever.
    assert 0 < await redis_client.ttl(key) <= 30 < first_ttl
