"""Reading conversations and members; every read is scoped to a member."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from chat_message.context import MessageContext
from chat_message.errors import no_conversation
from chat_message.ids import is_id
from chat_platform.mongo import Document


def member_key(conversation_id: str, user_id: str) -> str:
    return f"{conversation_id}:{user_id}"


def member_doc(conversation_id: str, user_id: str, read_seq: int, now: Any) -> Document:
    return {
        "_id": member_key(conversation_id, user_id),
        "conversation_id": conversation_id,
        "user_id": user_id,
        "read_seq": read_seq,
        "delivered_seq": read_seq,
        "joined_at": now,
    }


async def conversation_for_member(
    ctx: MessageContext,
    conversation_id: str,
    user_id: str,
    session: AsyncClientSession | None = None,
) -> Document:
    """The conversation if `user_id` is a member; 404 otherwise, whatever the reason."""
    if not is_id(conversation_id):
        raise no_conversation()
    doc = await ctx.conversations.find_one(
        {"_id": conversation_id, "member_ids": user_id}, session=session
    )
    if doc is None:
        raise no_conversation()
    return doc


async def read_cursors(
    ctx: MessageContext, user_id: str, conversation_ids: list[str]
) -> dict[str, int]:
    """The user's read_seq per conversation, in one query."""
    keys = [member_key(cid, user_id) for cid in conversation_ids]
    docs = await ctx.members.find(
        {"_id": {"$in": keys}}, {"conversation_id": 1, "read_seq": 1}
    ).to_list()
    return {d["conversation_id"]: d["read_seq"] for d in docs}
