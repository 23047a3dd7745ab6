"""One transaction for a write and its events, and publishing once it has committed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from chat_contracts import Envelope
from chat_message.context import MessageContext

T = TypeVar("T")


async def commit_then_publish(
    ctx: MessageContext,
    write: Callable[[AsyncClientSession], Awaitable[T]],
    events: Sequence[Envelope] | Callable[[T], Sequence[Envelope]],
) -> T:
    """Run `write` and stage its events atomically, then publish them after the commit.

    `events` may depend on what `write` returned. If publishing fails the
    events stay staged and the outbox relay publishes them later.
    """
    staged: list[Envelope] = []

    async def body(session: AsyncClientSession) -> T:
        result = await write(session)
        staged[:] = events(result) if callable(events) else list(events)
        await ctx.outbox.stage(staged, session)
        return result

    async with ctx.transaction_sessions.start() as session:
        result = await session.with_transaction(body)
    await ctx.outbox.publish_after_commit(staged)
    return result
