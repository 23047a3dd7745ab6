"""Writes and the events they cause, committed together and published after the commit.

Every write that others must hear about goes through `commit_then_publish`:
the write and the staging of its events in the outbox run in one MongoDB
transaction, and the events go out once it has committed. If publishing fails
(or the process dies first) the outbox relay publishes them later, so a
stored change is never left unpublished and nothing is published that was
not stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from chat_contracts import Envelope
from chat_platform.outbox import Outbox, Staged

log = logging.getLogger(__name__)

T = TypeVar("T")

SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncClientSession]]
Write = Callable[[AsyncClientSession], Awaitable[tuple[T, Sequence[Envelope]]]]
"""Writes in the session's transaction; returns its result and the events it causes."""


class Transactions:
    def __init__(self, start_session: SessionFactory, outbox: Outbox) -> None:
        self.start_session = start_session
        self.outbox = outbox
        self._publishing: set[asyncio.Task[int]] = set()

    async def commit_then_publish(self, write: Write[T], *, wait_for_publish: bool = True) -> T:
        """Run `write` and stage its events atomically, then publish them.

        A transient transaction error (a write conflict) runs `write` again, so it
        must be safe to repeat. `wait_for_publish=False` returns right after the
        commit and publishes in the background: a group commit uses it so that
        the next batch does not wait for the broker.
        """

        async def body(session: AsyncClientSession) -> tuple[T, Staged]:
            result, events = await write(session)
            return result, await self.outbox.stage(events, session)

        async with self.start_session() as session:
            result, staged = await session.with_transaction(body)
        if wait_for_publish:
            await self.outbox.publish_after_commit(staged)
        elif staged.envelopes:
            task = asyncio.create_task(self.outbox.publish_after_commit(staged))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        return result

    async def close(self, timeout: float = 5.0) -> None:
        """Wait for background publishes (what is not done by then, the relay publishes)."""
        if self._publishing:
            await asyncio.wait(self._publishing, timeout=timeout)
