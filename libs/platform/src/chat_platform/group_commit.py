"""Group commit: requests wait in a queue and one writer writes all that wait, together.

A database round trip costs about the same whatever it carries, so requests
that arrive together are not written one by one: while one batch is written
the next accumulates, and under load batches grow by themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client import Counter

from chat_contracts.errors import ApiError, ErrorCode, timed_out, unavailable
from chat_platform.deadlines import current_deadline, expired

log = logging.getLogger(__name__)

OVERFLOWED = Counter(
    "chat_group_commit_overflow_total",
    "Requests refused at once because too many were waiting to be written.",
    ["writer"],
)
EXPIRED = Counter(
    "chat_group_commit_expired_total",
    "Requests dropped unwritten because their deadline passed while they waited.",
    ["writer"],
)

Req = TypeVar("Req")
Res = TypeVar("Res")

WriteBatch = Callable[[list[Req]], Awaitable[Sequence[Res | Exception]]]
"""Writes a batch; one outcome per request, in order (an exception answers that request)."""


@dataclass
class _Pending(Generic[Req, Res]):
    request: Req
    future: asyncio.Future[Res]
    deadline: float | None
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class GroupCommit(Generic[Req, Res]):
    """Runs `write_batch` over everything waiting, `max_batch` at a time.

    At most `max_waiting` requests wait: beyond, a request is answered
    `unavailable` at once. A request whose deadline (the command's, see
    `deadlines`) passed while it waited is dropped unwritten. If a batch fails as
    a whole, nothing of it was stored: each of its requests is answered
    `unavailable` (retrying is safe). `run()` is the writer: it must run (in the
    service's task group) while requests are submitted.
    """

    write_batch: WriteBatch[Req, Res]
    name: str
    max_batch: int
    max_waiting: int
    failure_message: str
    on_written: Callable[[float], None] | None = None
    # Failures of a dependency known to come and go (an outage): one line, no traceback.
    expected_errors: tuple[type[Exception], ...] = ()
    _queue: list[_Pending[Req, Res]] = field(default_factory=list, init=False)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _closing: bool = field(default=False, init=False)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def submit(self, request: Req) -> Res:
        if self._closing:
            raise ApiError(ErrorCode.UNAVAILABLE, "The service is shutting down; retry.")
        if len(self._queue) >= self.max_waiting:
            OVERFLOWED.labels(self.name).inc()
            raise unavailable("The service is busy; retry shortly.", retry_after=1)
        future: asyncio.Future[Res] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(request, future, current_deadline.get()))
        self._wakeup.set()
        return await future

    async def run(self) -> None:
        """The writer; runs until `stop()`, after writing what was queued before it."""
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue:
                    batch = self._take_batch()
                    if batch:
                        await self._write(batch)
                if self._closing:
                    return
        finally:
            self._stopped.set()

    async def stop(self) -> None:
        """Refuse new requests, and return once the queued ones are written."""
        self._closing = True
        self._wakeup.set()
        await self._stopped.wait()

    def _take_batch(self) -> list[_Pending[Req, Res]]:
        """The next batch, without the requests whose caller stopped waiting."""
        batch = self._queue[: self.max_batch]
        self._queue = self._queue[self.max_batch :]
        live = []
        for pending in batch:
            if expired(pending.deadline):
                EXPIRED.labels(self.name).inc()
                if not pending.future.done():
                    pending.future.set_exception(timed_out("Dropped unwritten past its deadline."))
            else:
                live.append(pending)
        return live

    async def _write(self, batch: list[_Pending[Req, Res]]) -> None:
        try:
            outcomes = await self.write_batch([p.request for p in batch])
        except self.expected_errors as exc:
            log.warning(
                "batch failed",
                extra={
                    "writer": self.name,
                    "size": len(batch),
                    "error": f"{type(exc).__name__}: {exc}"[:200],
                },
            )
            outcomes = [ApiError(ErrorCode.UNAVAILABLE, self.failure_message)] * len(batch)
        except Exception:
            log.exception("batch failed", extra={"writer": self.name, "size": len(batch)})
            outcomes = [ApiError(ErrorCode.UNAVAILABLE, self.failure_message)] * len(batch)
        now = time.perf_counter()
        for pending, outcome in zip(batch, outcomes, strict=True):
            if self.on_written is not None and not isinstance(outcome, Exception):
                self.on_written(now - pending.queued_at)
            if pending.future.done():
                continue
            if isinstance(outcome, Exception):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)
