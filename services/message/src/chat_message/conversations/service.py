"""Use cases of conversations: create, list, read, change members."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from chat_contracts import Conversation, ConversationUpdated, Envelope
from chat_message.context import PRODUCER, MessageContext
from chat_message.conversations.models import AddMembers, CreateDirect, CreateGroup
from chat_message.conversations.store import (
    conversation_for_member,
    member_doc,
    member_key,
    read_cursors,
)
from chat_message.errors import forbidden, invalid, no_conversation
from chat_message.ids import new_id
from chat_message.transactions import commit_then_publish
from chat_message.views import conversation_view, now_ms, utc
from chat_platform.errors import not_found
from chat_platform.mongo import Document


async def _require_known_users(ctx: MessageContext, user_ids: list[str]) -> None:
    """Every id must be a registered user (the `users` projection of `user.registered`).

    A user who registered a moment ago may not have reached the projection yet,
    so a miss is re-checked briefly before it becomes an error.
    """
    wanted = set(user_ids)
    for delay in (0.0, 0.05, 0.1, 0.25, 0.5):
        if delay:
            await asyncio.sleep(delay)
        found = {
            d["_id"]
            for d in await ctx.users.find({"_id": {"$in": list(wanted)}}, {"_id": 1}).to_list()
        }
        wanted -= found
        if not wanted:
            return
    raise not_found(f"User {sorted(wanted)[0]}")


def _updated_event(conversation: Document, removed: list[str] | None = None) -> Envelope:
    return Envelope.wrap(
        ConversationUpdated(
            conversation=conversation_view(conversation), removed_member_ids=removed or []
        ),
        PRODUCER,
    )


def _new_conversation(
    kind: str, owner_id: str, member_ids: list[str], title: str | None
) -> Document:
    now = now_ms()
    return {
        "_id": new_id(),
        "type": kind,
        "title": title,
        "owner_id": owner_id,
        "member_ids": member_ids,
        "created_at": now,
        "updated_at": now,
        "last_seq": 0,
        "last_message": None,
    }


async def create_conversation(
    ctx: MessageContext, user_id: str, body: CreateDirect | CreateGroup
) -> tuple[Conversation, bool]:
    """The conversation, and whether it was created (False: the direct one that existed)."""
    if isinstance(body, CreateDirect):
        return await _create_direct(ctx, user_id, body.member_ids[0])
    members = body.member_ids
    if len(set(members)) != len(members):
        raise invalid("member_ids has duplicates.", "member_ids")
    all_members = [user_id, *(m for m in members if m != user_id)]
    if len(all_members) > ctx.settings.max_group_members:
        raise invalid(
            f"A group has at most {ctx.settings.max_group_members} members.", "member_ids"
        )
    await _require_known_users(ctx, all_members[1:])
    doc = _new_conversation("group", user_id, all_members, body.title)

    async def write(session: AsyncClientSession) -> None:
        await ctx.conversations.insert_one(doc, session=session)
        await ctx.members.insert_many(
            [member_doc(doc["_id"], m, 0, doc["created_at"]) for m in all_members], session=session
        )

    await commit_then_publish(ctx, write, [_updated_event(doc)])
    return conversation_view(doc, viewer=user_id), True


async def _create_direct(
    ctx: MessageContext, user_id: str, other_id: str
) -> tuple[Conversation, bool]:
    if other_id == user_id:
        raise invalid("A direct conversation is with someone else.", "member_ids")
    await _require_known_users(ctx, [other_id])
    pair = sorted([user_id, other_id])
    pair_key = ":".join(pair)
    existing = await ctx.direct_pairs.find_one({"_id": pair_key})
    if existing is None:
        doc = _new_conversation("direct", user_id, pair, None)

        async def write(session: AsyncClientSession) -> None:
            await ctx.direct_pairs.insert_one(
                {"_id": pair_key, "conversation_id": doc["_id"]}, session=session
            )
            await ctx.conversations.insert_one(doc, session=session)
            await ctx.members.insert_many(
                [member_doc(doc["_id"], m, 0, doc["created_at"]) for m in pair], session=session
            )

        try:
            await commit_then_publish(ctx, write, [_updated_event(doc)])
            return conversation_view(doc, viewer=user_id), True
        except DuplicateKeyError:
            # The other user created it at the same moment: theirs is the one.
            existing = await ctx.direct_pairs.find_one({"_id": pair_key})
            if existing is None:
                raise
    return await get_conversation(ctx, user_id, existing["conversation_id"]), False


async def get_conversation(ctx: MessageContext, user_id: str, conversation_id: str) -> Conversation:
    doc = await conversation_for_member(ctx, conversation_id, user_id)
    cursors = await read_cursors(ctx, user_id, [conversation_id])
    return conversation_view(doc, viewer=user_id, read_seq=cursors.get(conversation_id, 0))


def _encode_cursor(doc: Document) -> str:
    raw = json.dumps([utc(doc["updated_at"]).isoformat(), doc["_id"]])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        updated_at, conversation_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        # In UTC now: a forged offset at the edge of the calendar overflows here, as a 422,
        # instead of in the BSON encoder of the query, as a 500.
        return utc(datetime.fromisoformat(updated_at)).astimezone(UTC), str(conversation_id)
    except (ValueError, TypeError, OverflowError) as exc:
        raise invalid("cursor is not valid.", "cursor") from exc


async def list_conversations(
    ctx: MessageContext, user_id: str, limit: int, cursor: str | None
) -> tuple[list[Conversation], str | None]:
    """The user's conversations, most recent activity first, `limit` at a time."""
    query: Document = {"member_ids": user_id}
    if cursor:
        updated_at, last_id = _decode_cursor(cursor)
        query["$or"] = [
            {"updated_at": {"$lt": updated_at}},
            {"updated_at": updated_at, "_id": {"$lt": last_id}},
        ]
    docs = await ctx.conversations.find(
        query, sort=[("updated_at", -1), ("_id", -1)], limit=limit + 1
    ).to_list()
    page, more = docs[:limit], len(docs) > limit
    cursors = await read_cursors(ctx, user_id, [d["_id"] for d in page])
    items = [conversation_view(d, viewer=user_id, read_seq=cursors.get(d["_id"], 0)) for d in page]
    return items, _encode_cursor(page[-1]) if more and page else None


async def add_members(
    ctx: MessageContext, user_id: str, conversation_id: str, body: AddMembers
) -> Conversation:
    doc = await conversation_for_member(ctx, conversation_id, user_id)
    if doc["type"] != "group":
        raise invalid("Members can only be added to a group.", "user_ids")
    if len(set(body.user_ids)) != len(body.user_ids):
        raise invalid("user_ids has duplicates.", "user_ids")
    new = [u for u in body.user_ids if u not in doc["member_ids"]]
    if len(doc["member_ids"]) + len(new) > ctx.settings.max_group_members:
        raise invalid(f"A group has at most {ctx.settings.max_group_members} members.", "user_ids")
    if not new:
        return await get_conversation(ctx, user_id, conversation_id)
    await _require_known_users(ctx, new)
    now = now_ms()

    async def write(session: AsyncClientSession) -> Document:
        current = await ctx.conversations.find_one_and_update(
            {"_id": conversation_id},
            {"$addToSet": {"member_ids": {"$each": new}}, "$set": {"updated_at": now}},
            return_document=True,
            session=session,
        )
        if current is None:
            raise no_conversation()
        # Checked again inside the transaction: concurrent additions must not add up past it.
        if len(current["member_ids"]) > ctx.settings.max_group_members:
            raise invalid(
                f"A group has at most {ctx.settings.max_group_members} members.", "user_ids"
            )
        for member in new:
            await ctx.members.update_one(
                {"_id": member_key(conversation_id, member)},
                {"$setOnInsert": member_doc(conversation_id, member, current["last_seq"], now)},
                upsert=True,
                session=session,
            )
        return current

    await commit_then_publish(ctx, write, lambda current: [_updated_event(current)])
    return await get_conversation(ctx, user_id, conversation_id)


async def remove_member(
    ctx: MessageContext, user_id: str, conversation_id: str, target_id: str
) -> None:
    """Leave (target is the caller) or, for the group's owner, remove someone."""
    doc = await conversation_for_member(ctx, conversation_id, user_id)
    if doc["type"] != "group":
        raise invalid("Nobody can leave a direct conversation.", "user_id")
    if target_id not in doc["member_ids"]:
        raise not_found("Member")
    if target_id != user_id and doc["owner_id"] != user_id:
        raise forbidden("Only the group's owner can remove other members.")
    now = now_ms()

    async def write(session: AsyncClientSession) -> Document:
        current = await ctx.conversations.find_one_and_update(
            {"_id": conversation_id},
            {"$pull": {"member_ids": target_id}, "$set": {"updated_at": now}},
            return_document=True,
            session=session,
        )
        if current is None:
            raise no_conversation()
        if current["owner_id"] == target_id and current["member_ids"]:
            # The owner left: the longest-standing member takes over, so the group stays managed.
            current["owner_id"] = current["member_ids"][0]
            await ctx.conversations.update_one(
                {"_id": conversation_id},
                {"$set": {"owner_id": current["owner_id"]}},
                session=session,
            )
        await ctx.members.delete_one(
            {"_id": member_key(conversation_id, target_id)}, session=session
        )
        return current

    await commit_then_publish(ctx, write, lambda current: [_updated_event(current, [target_id])])
