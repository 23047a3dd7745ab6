"""Keep the events of one conversation in the order they were consumed.

The consumer handles deliveries concurrently; two messages of one
conversation must still reach devices in seq order, or the second one makes
clients think they missed the first. Work for one key waits for the work
queued before it for that key; other keys run freely.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class KeyedSequencer:
    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Future[None]] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` after earlier work for `key`; must be called in arrival order."""
        previous = self._tails.get(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[key] = done
        try:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(previous)
            return await work()
        finally:
            done.set_result(None)
            if self._tails.get(key) is done:
                del self._tails[key]

    def __len__(self) -> int:
        return len(self._tails)
