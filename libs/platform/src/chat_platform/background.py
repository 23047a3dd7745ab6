"""A service's long-running loops, started under one task group and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    """Loops of one service: `run` a coroutine, or do a job `every` few seconds."""

    def __init__(self, group: asyncio.TaskGroup) -> None:
        self._group = group
        self._tasks: list[asyncio.Task[Any]] = []

    def run(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(self._group.create_task(coroutine, name=name))

    def every(self, seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
        """Run `job` every `seconds`; a failure is logged and the loop goes on."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await job()
                except Exception:
                    log.warning("periodic job failed", exc_info=True, extra={"job": name})

        self.run(loop(), name)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()


@contextlib.asynccontextmanager
async def background_tasks() -> AsyncIterator[Background]:
    """The service's task group: whatever still runs when the block ends is cancelled."""
    async with asyncio.TaskGroup() as group:
        background = Background(group)
        try:
            yield background
        finally:
            background.cancel()
