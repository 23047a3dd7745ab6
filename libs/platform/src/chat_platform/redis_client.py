"""The one way services make a Redis client: bounded waits, and no error for a stale connection.

Two things a plain client gets wrong under load and faults:
- a burst (thousands of disconnects at once) needs more connections than the
  pool holds: the plain pool fails at once (`Too many connections`); this one
  makes callers wait, for a bounded time, for a connection to come free;
- after a Redis restart every pooled connection is dead, and the plain client
  fails the first command on each of them; this one reconnects and retries it.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def create_redis(
    url: str,
    *,
    max_connections: int = 64,
    wait_for_connection: float = 2.0,
    socket_timeout: float = 5.0,
) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_for_connection,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=socket_timeout,
        # One retry: enough to replace a connection a restart left stale, without making
        # every command of an outage wait through a series of back-offs.
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis(connection_pool=pool)
