"""One transaction for a write and its events, and publishing once it has committed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from chat_contracts import Envelope
from chat_message.context import MessageContext
from chat_platform.outbox import Staged

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

    async def body(session: AsyncClientSession) -> tuple[T, Staged]:
        result = await write(session)
        staged = await ctx.outbox.stage(events(result) if callable(events) else events, session)
        return result, staged

    async with ctx.transaction_sessions.start() as session:
        result, staged = await session.with_transaction(body)
    await ctx.outbox.publish_after_commit(staged)
    return result
