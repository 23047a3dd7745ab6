"""The services' Redis client on a real Redis: waits for a free connection, survives a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from chat_platform.redis_client import create_redis
from chat_testkit.private import PrivateRedis


@pytest_asyncio.fixture
async def client(private_redis: PrivateRedis) -> AsyncIterator[Redis]:
    redis = create_redis(private_redis.url, max_connections=2, wait_for_connection=1.0)
    yield redis
    await redis.aclose()


async def test_pooled_connections_left_stale_by_a_restart_are_retried_not_failed(
    private_redis: PrivateRedis, client: Redis
) -> None:
    # Both pooled connections in use once, so both are stale after the restart.
    await asyncio.gather(client.set("k", "before"), client.blpop(["nothing"], timeout=0.2))
    private_redis.kill()
    private_redis.start()
    results = await asyncio.gather(*(client.set(f"k{i}", i) for i in range(4)))
    assert results == [True] * 4
    assert await client.get("k3") == "3"


async def test_a_burst_beyond_the_pool_waits_for_a_free_connection(client: Redis) -> None:
    # Two connections, six commands that each hold one for a moment: none fails.
    started = time.monotonic()
    results = await asyncio.gather(*(client.blpop([f"empty{i}"], timeout=0.3) for i in range(6)))
    assert results == [None] * 6
    assert time.monotonic() - started >= 0.85  # three rounds of two, not six at once


async def test_waiting_for_a_connection_is_bounded(private_redis: PrivateRedis) -> None:
    redis = create_redis(private_redis.url, max_connections=1, wait_for_connection=0.2)
    try:

        async def hold() -> None:
            await redis.blpop(["empty"], timeout=2)

        holding = asyncio.create_task(hold())
        await asyncio.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await redis.ping()
        assert time.monotonic() - started < 1.5
        await holding
    finally:
        await redis.aclose()
