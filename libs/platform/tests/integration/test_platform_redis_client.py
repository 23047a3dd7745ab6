"""The services' Redis client on a real Redis: waits for a free connection, survives a restart."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from chat_platform.redis_client import create_redis
from chat_testkit import free_port, port_open


class OwnRedis:
    """A redis-server of this test's own, which it may kill and start again on the same port."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed: this test runs one of its own", False)
        self.exe = exe
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "the test's redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest_asyncio.fixture
async def client(own_redis: OwnRedis) -> AsyncIterator[Redis]:
    redis = create_redis(own_redis.url, max_connections=2, wait_for_connection=1.0)
    yield redis
    await redis.aclose()


async def test_pooled_connections_left_stale_by_a_restart_are_retried_not_failed(
    own_redis: OwnRedis, client: Redis
) -> None:
    # Both pooled connections in use once, so both are stale after the restart.
    await asyncio.gather(client.set("k", "before"), client.blpop(["nothing"], timeout=0.2))
    own_redis.kill()
    own_redis.start()
    results = await asyncio.gather(*(client.set(f"k{i}", i) for i in range(4)))
    assert results == [True] * 4
    assert await client.get("k3") == "3"


async def test_a_burst_beyond_the_pool_waits_for_a_free_connection(client: Redis) -> None:
    # Two connections, six commands that each hold one for a moment: none fails.
    started = time.monotonic()
    results = await asyncio.gather(*(client.blpop([f"empty{i}"], timeout=0.3) for i in range(6)))
    assert results == [None] * 6
    assert time.monotonic() - started >= 0.85  # three rounds of two, not six at once


async def test_waiting_for_a_connection_is_bounded(own_redis: OwnRedis) -> None:
    redis = create_redis(own_redis.url, max_connections=1, wait_for_connection=0.2)
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
