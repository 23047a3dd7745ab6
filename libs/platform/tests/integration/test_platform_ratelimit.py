"""Token buckets on a real Redis: shared by instances, refilled by Redis's clock."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from chat_platform.ratelimit import Rate, TokenBuckets


@pytest.fixture
def buckets(redis_client: Redis, namespace: str) -> TokenBuckets:
    return TokenBuckets(redis_client, f"{namespace}:rl")


async def test_burst_is_allowed_then_refused_with_a_wait(buckets: TokenBuckets) -> None:
    rate = Rate(per_second=2, burst=5)
    decisions = [await buckets.take("typing:u1", rate) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert all(d.retry_after == 0 for d in decisions[:5])
    # One token is missing at 2 tokens/s: about half a second.
    assert 0.4 < decisions[5].retry_after <= 0.5


async def test_tokens_come_back_with_time(buckets: TokenBuckets) -> None:
    rate = Rate(per_second=20, burst=2)
    assert (await buckets.take("k", rate)).allowed
    assert (await buckets.take("k", rate)).allowed
    refused = await buckets.take("k", rate)
    assert not refused.allowed
    await asyncio.sleep(refused.retry_after + 0.02)
    assert (await buckets.take("k", rate)).allowed


async def test_keys_have_separate_buckets(buckets: TokenBuckets) -> None:
    rate = Rate(per_second=1, burst=1)
    assert (await buckets.take("u1", rate)).allowed
    assert not (await buckets.take("u1", rate)).allowed
    assert (await buckets.take("u2", rate)).allowed


async def test_instances_share_one_bucket(redis_url: str, namespace: str) -> None:
    # Two service instances, two connections, one limit.
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        rate = Rate(per_second=1, burst=4)
        a = TokenBuckets(first, f"{namespace}:rl")
        b = TokenBuckets(second, f"{namespace}:rl")
        results = await asyncio.gather(*(bk.take("shared", rate) for bk in (a, b) * 4))
        assert sum(d.allowed for d in results) == 4
    finally:
        await first.aclose()
        await second.aclose()


async def test_cost_takes_several_tokens(buckets: TokenBuckets) -> None:
    rate = Rate(per_second=1, burst=10)
    assert (await buckets.take("k", rate, cost=7)).allowed
    refused = await buckets.take("k", rate, cost=7)
    assert not refused.allowed
    assert 3.9 < refused.retry_after <= 4.0
    assert (await buckets.take("k", rate, cost=3)).allowed


async def test_bucket_keys_are_prefixed_and_expire(
    buckets: TokenBuckets, redis_client: Redis, namespace: str
) -> None:
    await buckets.take("u1", Rate(per_second=1, burst=3))
    ttl = await redis_client.ttl(f"{namespace}:rl:u1")
    # Expires once it would be full again anyway: idle users cost no memory.
    assert 0 < ttl <= 4
