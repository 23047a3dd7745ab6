"""Use cases of blocks and settings: each change stored with its event, published after commit."""

from __future__ import annotations

import logging
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from chat_auth.context import AuthContext
from chat_auth.privacy import store
from chat_auth.users import store as user_store
from chat_contracts import Envelope
from chat_contracts.errors import invalid, not_found
from chat_contracts.events import UserBlocked, UserSettingsChanged, UserUnblocked
from chat_contracts.models import UserSettings

log = logging.getLogger(__name__)

PRODUCER = "auth"
BLOCK_ACTION = "block"
SETTINGS_ACTION = "settings"


async def block(ctx: AuthContext, blocker_id: str, blocked_id: str) -> None:
    await ctx.budgets.spend(blocker_id, BLOCK_ACTION)
    if blocked_id == blocker_id:
        raise invalid("You cannot block yourself.", "user_id")
    if await user_store.find_by_id(ctx.users, blocked_id) is None:
        raise not_found("User")
    await _change_block(ctx, UserBlocked(blocker_id=blocker_id, blocked_id=blocked_id))


async def unblock(ctx: AuthContext, blocker_id: str, blocked_id: str) -> None:
    await ctx.budgets.spend(blocker_id, BLOCK_ACTION)
    await _change_block(ctx, UserUnblocked(blocker_id=blocker_id, blocked_id=blocked_id))


async def _change_block(ctx: AuthContext, event: UserBlocked | UserUnblocked) -> None:
    """Store the block (or its end) and publish it; doing it again changes and tells nothing."""
    envelope = Envelope.wrap(event, PRODUCER)
    change = store.add_block if isinstance(event, UserBlocked) else store.remove_block

    async def write(session: AsyncClientSession) -> tuple[bool, list[Envelope]]:
        changed = await change(ctx.blocks, event.blocker_id, event.blocked_id, session)
        return changed, [envelope] if changed else []

    if await ctx.transactions.commit_then_publish(write):
        log.info(event.type, extra={"user_id": event.blocker_id, "other_id": event.blocked_id})


async def list_blocked(
    ctx: AuthContext, blocker_id: str, cursor: str | None, limit: int
) -> dict[str, Any]:
    # One more than asked tells whether another page follows without a second query.
    ids = await store.blocked_ids(ctx.blocks, blocker_id, cursor, limit + 1)
    page, more = ids[:limit], len(ids) > limit
    docs = {d["_id"]: d async for d in ctx.users.find({"_id": {"$in": page}})}
    return {
        "items": [
            user_store.public_user(docs[i]).model_dump(mode="json") for i in page if i in docs
        ],
        "next_cursor": page[-1] if more else None,
    }


async def get_settings(ctx: AuthContext, user_id: str) -> UserSettings:
    doc = await ctx.users.find_one({"_id": user_id}, {"settings": 1})
    if doc is None:
        raise not_found("User")
    return store.settings_of(doc)


async def change_settings(ctx: AuthContext, user_id: str, changes: dict[str, Any]) -> UserSettings:
    await ctx.budgets.spend(user_id, SETTINGS_ACTION)
    if not changes:
        return await get_settings(ctx, user_id)

    async def write(session: AsyncClientSession) -> tuple[UserSettings, list[Envelope]]:
        settings = await store.update_settings(ctx.users, user_id, changes, session)
        if settings is None:
            raise not_found("User")
        event = UserSettingsChanged(user_id=user_id, settings=settings)
        return settings, [Envelope.wrap(event, PRODUCER)]

    return await ctx.transactions.commit_then_publish(write)
