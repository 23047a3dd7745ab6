"""Group commit without a database: batches, the bound on waiting, deadlines, failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from chat_contracts.errors import ApiError, ErrorCode
from chat_platform.deadlines import current_deadline
from chat_platform.group_commit import GroupCommit


class Writer:
    """Writes batches when let through, recording them."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def write(self, batch: list[int]) -> Sequence[int | Exception]:
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("the database is gone")
        self.batches.append(batch)
        return [n * 10 if n >= 0 else ApiError(ErrorCode.NOT_FOUND, "no") for n in batch]


def group(writer: Writer, max_waiting: int = 100) -> GroupCommit[int, int]:
    return GroupCommit(
        writer.write,
        name="test",
        max_batch=3,
        max_waiting=max_waiting,
        failure_message="Not stored; retry.",
    )


async def test_what_waits_is_written_together_in_batches_and_each_gets_its_answer() -> None:
    writer = Writer()
    commit = group(writer)
    writer.gate.clear()
    running = asyncio.create_task(commit.run())
    first = asyncio.create_task(commit.submit(0))
    await asyncio.sleep(0.01)  # the writer took [0] and waits at the gate
    rest = [asyncio.create_task(commit.submit(n)) for n in (1, 2, -1, 4)]
    await asyncio.sleep(0.01)
    writer.gate.set()
    assert await first == 0
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert results[:2] == [10, 20]
    assert isinstance(results[2], ApiError)
    assert results[3] == 40
    assert writer.batches == [[0], [1, 2, -1], [4]]
    await commit.stop()
    await running


async def test_beyond_the_bound_a_request_is_refused_at_once() -> None:
    writer = Writer()
    commit = group(writer, max_waiting=2)
    writer.gate.clear()
    waiting = [asyncio.create_task(commit.submit(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    with pytest.raises(ApiError) as refused:
        await commit.submit(3)
    assert refused.value.code is ErrorCode.UNAVAILABLE
    assert refused.value.details == {"retry_after": 1}
    running = asyncio.create_task(commit.run())
    writer.gate.set()
    assert await asyncio.gather(*waiting) == [10, 20]
    await commit.stop()
    await running


async def test_a_request_whose_deadline_passed_while_waiting_is_not_written() -> None:
    writer = Writer()
    commit = group(writer)

    async def submit(n: int, deadline: float) -> int:
        current_deadline.set(deadline)
        return await commit.submit(n)

    late = asyncio.create_task(submit(1, time.time() + 0.05))
    on_time = asyncio.create_task(submit(2, time.time() + 30))
    await asyncio.sleep(0.1)  # nobody writes meanwhile: the first one's caller gave up
    running = asyncio.create_task(commit.run())
    with pytest.raises(ApiError) as expired:
        await late
    assert expired.value.code is ErrorCode.TIMEOUT
    assert await on_time == 20
    assert writer.batches == [[2]]
    await commit.stop()
    await running


async def test_a_failed_batch_answers_each_request_unavailable_and_the_writer_goes_on() -> None:
    writer = Writer()
    commit = group(writer)
    running = asyncio.create_task(commit.run())
    writer.fail = True
    with pytest.raises(ApiError) as failed:
        await commit.submit(1)
    assert failed.value.code is ErrorCode.UNAVAILABLE
    writer.fail = False
    assert await commit.submit(2) == 20
    await commit.stop()
    await running


async def test_after_stop_requests_are_refused_and_what_waited_was_written() -> None:
    writer = Writer()
    commit = group(writer)
    writer.gate.clear()
    running = asyncio.create_task(commit.run())
    waiting = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0.01)
    stopping = asyncio.create_task(commit.stop())
    await asyncio.sleep(0.01)
    with pytest.raises(ApiError) as refused:
        await commit.submit(2)
    assert refused.value.code is ErrorCode.UNAVAILABLE
    writer.gate.set()
    assert await waiting == 10
    await stopping
    await running
