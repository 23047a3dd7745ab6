"""Group commit: requests wait in a queue and one writer commits all that wait, together.

The database costs about a round trip per operation whatever its size, so
sends and cursor moves are not written one by one: while one batch commits,
the next accumulates, and under load batches grow by themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from chat_contracts import ErrorCode
from chat_message.context import MessageContext
from chat_platform.errors import ApiError
from chat_platform.outbox import Staged

Req = TypeVar("Req")
Res = TypeVar("Res")


@dataclass
class Pending(Generic[Req, Res]):
    request: Req
    future: asyncio.Future[Res]
    queued_at: float = field(default_factory=time.perf_counter)


class GroupCommit(Generic[Req, Res]):
    """Subclasses write a batch in `_write_batch` and answer every pending future."""

    name = "group-commit"

    def __init__(self, ctx: MessageContext, *, max_batch: int) -> None:
        self.ctx = ctx
        self.max_batch = max_batch
        self._queue: list[Pending[Req, Res]] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[int]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Write what is queued, refuse what comes after, wait for the last publishes."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._publishing:
            await asyncio.wait(self._publishing, timeout=5)

    async def submit(self, request: Req) -> Res:
        if self._closing:
            raise ApiError(ErrorCode.UNAVAILABLE, "The service is shutting down; retry.")
        future: asyncio.Future[Res] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(request, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._write_batch(batch)
            if self._closing:
                return

    async def _write_batch(self, batch: list[Pending[Req, Res]]) -> None:
        raise NotImplementedError

    def publish_in_background(self, staged: Staged) -> None:
        """Publish a committed batch's events without holding up the next batch."""
        if staged.envelopes:
            task = asyncio.create_task(self.ctx.outbox.publish_after_commit(staged))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    @staticmethod
    def fail_all(batch: list[Pending[Req, Res]], message: str) -> None:
        # Nothing of the batch was stored (its transaction aborted): retrying is safe.
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(ApiError(ErrorCode.UNAVAILABLE, message))

    @staticmethod
    def answer(batch: list[Pending[Req, Res]], outcomes: Sequence[Res | Exception]) -> None:
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, Exception):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)
