"""Blocks and settings in MongoDB.

A block is one document per (blocker, blocked) pair, its id made of both so that
blocking twice is one document. Settings live on the user's document; a user
who never changed them has none stored and reads the defaults.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from chat_contracts.models import UserSettings
from chat_platform.mongo import Document, Index

INDEXES = [
    Index("blocks", [("blocker_id", 1), ("blocked_id", 1)], {"name": "blocker_blocked"}),
]


def block_id(blocker_id: str, blocked_id: str) -> str:
    return f"{blocker_id}:{blocked_id}"


async def add_block(
    blocks: AsyncCollection[Document],
    blocker_id: str,
    blocked_id: str,
    session: AsyncClientSession,
) -> bool:
    """Store the block; True when it is new (an existing one is left as it was)."""
    result = await blocks.update_one(
        {"_id": block_id(blocker_id, blocked_id)},
        {
            "$setOnInsert": {
                "blocker_id": blocker_id,
                "blocked_id": blocked_id,
                "created_at": datetime.now(UTC),
            }
        },
        upsert=True,
        session=session,
    )
    return result.upserted_id is not None


async def remove_block(
    blocks: AsyncCollection[Document],
    blocker_id: str,
    blocked_id: str,
    session: AsyncClientSession,
) -> bool:
    result = await blocks.delete_one({"_id": block_id(blocker_id, blocked_id)}, session=session)
    return result.deleted_count > 0


async def blocked_ids(
    blocks: AsyncCollection[Document], blocker_id: str, after: str | None, limit: int
) -> list[str]:
    """The ids `blocker_id` blocked, in id order from after `after`."""
    query: dict[str, Any] = {"blocker_id": blocker_id}
    if after is not None:
        query["blocked_id"] = {"$gt": after}
    cursor = blocks.find(query, {"blocked_id": 1}, sort=[("blocked_id", 1)], limit=limit)
    return [doc["blocked_id"] async for doc in cursor]


def settings_of(user_doc: Document | None) -> UserSettings:
    return UserSettings(**((user_doc or {}).get("settings") or {}))


async def update_settings(
    users: AsyncCollection[Document],
    user_id: str,
    changes: dict[str, Any],
    session: AsyncClientSession,
) -> UserSettings | None:
    """Apply `changes`; the whole settings after them, or None when the user is unknown."""
    doc = await users.find_one_and_update(
        {"_id": user_id},
        {"$set": {f"settings.{name}": value for name, value in changes.items()}},
        projection={"settings": 1},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return None if doc is None else settings_of(doc)
