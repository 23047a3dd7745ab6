"""KeyedSequencer: one key's work runs in arrival order, other keys do not wait."""

from __future__ import annotations

import asyncio
import functools

from chat_gateway.ordering import KeyedSequencer


async def test_work_for_one_key_runs_in_arrival_order() -> None:
    sequencer = KeyedSequencer()
    finished: list[int] = []

    async def work(n: int, delay: float) -> int:
        await asyncio.sleep(delay)
        finished.append(n)
        return n

    # The first item is the slowest: without the sequencer it would finish last.
    results = await asyncio.gather(
        *(sequencer.run("c1", functools.partial(work, n, 0.03 - n * 0.01)) for n in range(3))
    )
    assert results == [0, 1, 2]
    assert finished == [0, 1, 2]
    assert len(sequencer) == 0


async def test_other_keys_do_not_wait() -> None:
    sequencer = KeyedSequencer()
    finished: list[str] = []
    gate = asyncio.Event()

    async def slow() -> None:
        await gate.wait()
        finished.append("slow")

    async def fast() -> None:
        finished.append("fast")

    slow_task = asyncio.create_task(sequencer.run("a", slow))
    await asyncio.sleep(0)
    await sequencer.run("b", fast)
    assert finished == ["fast"]
    gate.set()
    await slow_task
    assert finished == ["fast", "slow"]


async def test_a_failure_does_not_block_the_next_item() -> None:
    sequencer = KeyedSequencer()

    async def boom() -> None:
        raise RuntimeError("boom")

    async def fine() -> str:
        return "ok"

    failing = asyncio.create_task(sequencer.run("k", boom))
    following = asyncio.create_task(sequencer.run("k", fine))
    assert await following == "ok"
    (outcome,) = await asyncio.gather(failing, return_exceptions=True)
    assert isinstance(outcome, RuntimeError)
