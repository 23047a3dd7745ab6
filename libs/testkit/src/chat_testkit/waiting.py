"""Waiting for something that happens asynchronously, with a deadline instead of a sleep."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def eventually(
    condition: Callable[[], object | Awaitable[object]],
    timeout: float = 5.0,
    *,
    message: str = "condition not met",
) -> None:
    """Return as soon as `condition()` (awaited if need be) is truthy; fail after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"{message} within {timeout} s")
        await asyncio.sleep(0.02)
