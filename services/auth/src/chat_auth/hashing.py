"""Password hashing under a bound: argon2id costs its memory per hash, so only so many at once.

The hashes run on a thread pool of their own, as wide as the bound; a request
that finds every thread busy is answered `unavailable` at once rather than
queued, since a queue of hashes is the memory (and the wait) the bound exists
to prevent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from prometheus_client import Counter

from chat_contracts.errors import unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

REFUSED = Counter(
    "chat_auth_hashes_refused_total", "Password hashes refused because every hashing slot was busy."
)

# cgroup v2, then v1; "max" (v2) or a huge number (v1) means no limit.
CGROUP_LIMIT_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
NO_LIMIT = 1 << 60


def memory_limit_bytes(files: tuple[str, ...] = CGROUP_LIMIT_FILES) -> int | None:
    """The container's memory limit when there is one, else the machine's physical memory."""
    for name in files:
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < NO_LIMIT:
            return int(text)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def concurrent_hashes(
    configured: int, memory_bytes: int | None, fraction: float, bytes_per_hash: int
) -> int:
    """`configured` when set (> 0), else as many hashes as `fraction` of the memory holds; >= 1."""
    if configured > 0:
        return configured
    if memory_bytes is None:
        return 1
    return max(1, int(memory_bytes * fraction) // bytes_per_hash)


class PasswordHashing:
    def __init__(self, hasher: PasswordHasher, slots: int) -> None:
        self.hasher = hasher
        self.slots = slots
        self._busy = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(slots, thread_name_prefix="argon2")

    @property
    def bytes_per_hash(self) -> int:
        return self.hasher.memory_cost * 1024

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self.hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await self._run(check)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)

    async def _run(self, work: Callable[..., T], *args: object) -> T:
        if self._busy >= self.slots:
            REFUSED.inc()
            raise unavailable("Too many logins and registrations at once; try again.", 1)
        loop = asyncio.get_running_loop()
        self._busy += 1

        def release(_: concurrent.futures.Future[T]) -> None:
            # A loop closed first has nobody left to count for.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._release)

        # The slot is given back when the hash ends, not when its caller stops waiting
        # (a client that hangs up does not stop the thread, nor free its memory).
        future = self._pool.submit(work, *args)
        future.add_done_callback(release)
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        self._busy -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
