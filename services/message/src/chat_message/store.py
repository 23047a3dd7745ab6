"""The message service's collections, their indexes, and the reads every feature shares."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from chat_message.errors import no_conversation
from chat_message.ids import is_id
from chat_platform.mongo import Document, Index

Collection = AsyncCollection[Document]

INDEXES = [
    # One direct conversation per pair of users, however many create it at once: by the
    # `_id` of `direct_pairs`, not an index on conversations, whose every index each send
    # rewrites.
    Index(
        "conversations", [("member_ids", 1), ("updated_at", -1), ("_id", -1)], {"name": "by_member"}
    ),
    # Gapless order: no two messages share a seq in a conversation.
    Index("messages", [("conversation_id", 1), ("seq", 1)], {"unique": True, "name": "conv_seq"}),
    # Exactly-once sends: one message per (sender, client_msg_id).
    Index("messages", [("dedup_key", 1)], {"unique": True, "name": "dedup"}),
    Index("messages", [("conversation_id", 1), ("updated_at", 1)], {"name": "conv_updated"}),
    Index("members", [("user_id", 1)], {"name": "by_user"}),
    Index("attachments", [("uploader_id", 1)], {"name": "by_uploader"}),
    Index("attachments", [("message_ids", 1), ("created_at", 1)], {"name": "unused"}),
    Index("outbox", [("created_at", 1)], {"name": "created_at"}),
]


@dataclass(frozen=True)
class Store:
    conversations: Collection
    # One document per pair of users with a direct conversation, keyed by the pair.
    direct_pairs: Collection
    # One document per (conversation, member): the member's read and delivered cursors.
    members: Collection
    messages: Collection
    attachments: Collection
    # The projection of users (`users.py`): registrations and each user's settings.
    users: Collection
    # Blocks, one document per (blocker, blocked) with `active`, from `user.blocked` and
    # `user.unblocked`.
    blocks: Collection

    @classmethod
    def of(cls, db: AsyncDatabase[Document]) -> Store:
        """Each field is the collection of the same name."""
        return cls(**{f.name: db[f.name] for f in fields(cls)})

    async def conversation_for_member(
        self, conversation_id: str, user_id: str, session: AsyncClientSession | None = None
    ) -> Document:
        """The conversation if `user_id` is a member; 404 otherwise, whatever the reason."""
        if not is_id(conversation_id):
            raise no_conversation()
        doc = await self.conversations.find_one(
            {"_id": conversation_id, "member_ids": user_id}, session=session
        )
        if doc is None:
            raise no_conversation()
        return doc

    async def read_cursors(self, user_id: str, conversation_ids: list[str]) -> dict[str, int]:
        """The user's read_seq per conversation, in one query."""
        keys = [member_key(cid, user_id) for cid in conversation_ids]
        docs = await self.members.find(
            {"_id": {"$in": keys}}, {"conversation_id": 1, "read_seq": 1}
        ).to_list()
        return {d["conversation_id"]: d["read_seq"] for d in docs}


def block_key(blocker_id: str, blocked_id: str) -> str:
    return f"{blocker_id}:{blocked_id}"


def pair_key(a: str, b: str) -> str:
    """The key of the direct conversation of two users (in `direct_pairs`)."""
    return ":".join(sorted([a, b]))


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
