"""The deadline of the request being served, for every wait on its way to answer in time.

A command carries the time its caller stops waiting; the command server sets
it here for the handler, and whatever queues the request (a group commit)
drops it unprocessed once that time has passed: nobody would read the answer,
and the caller already retries or gave up.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

# Wall-clock seconds (time.time()): deadlines cross processes.
current_deadline: ContextVar[float | None] = ContextVar("current_deadline", default=None)


def expired(deadline: float | None) -> bool:
    return deadline is not None and time.time() >= deadline
