"""Users in MongoDB. Uniqueness of names and emails is the indexes' job, not a lookup's."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from chat_contracts import ErrorCode, User, UserRegistered
from chat_contracts.errors import ApiError
from chat_platform.mongo import Document, Index

INDEXES = [
    Index("users", [("username_lower", 1)], {"unique": True, "name": "username_unique"}),
    Index(
        "users",
        [("email_lower", 1)],
        {
            "unique": True,
            "name": "email_unique",
            "partialFilterExpression": {"email_lower": {"$type": "string"}},
        },
    ),
]


def now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def public_user(doc: Document) -> User:
    created_at = doc["created_at"]
    return User(
        id=doc["_id"],
        username=doc["username"],
        display_name=doc["display_name"],
        created_at=created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC),
    )


def new_user_document(
    username: str, password_hash: str, email: str | None, display_name: str | None
) -> Document:
    doc: Document = {
        "_id": str(ObjectId()),
        "username": username,
        "username_lower": username.lower(),
        "display_name": display_name or username,
        "password_hash": password_hash,
        # MongoDB keeps milliseconds: trim now so the answer to register matches later reads.
        "created_at": now_ms(),
    }
    if email is not None:
        doc["email"] = email
        doc["email_lower"] = email.lower()
    return doc


def duplicate_error(exc: DuplicateKeyError) -> ApiError:
    details: Any = exc.details or {}
    if "email" in str(details.get("keyPattern", details)) or "email" in str(exc):
        return ApiError(ErrorCode.CONFLICT, "That email is already registered.")
    return ApiError(ErrorCode.USERNAME_TAKEN, "That username is taken.")


def registered_event(doc: Document) -> UserRegistered:
    return UserRegistered(user=public_user(doc))


async def find_for_login(users: AsyncCollection[Document], login: str) -> Document | None:
    field = "email_lower" if "@" in login else "username_lower"
    return await users.find_one({field: login.lower()})


async def find_by_id(users: AsyncCollection[Document], user_id: str) -> Document | None:
    return await users.find_one({"_id": user_id})


async def search_by_prefix(
    users: AsyncCollection[Document], prefix: str, limit: int
) -> list[Document]:
    # An anchored, escaped prefix uses the username index as a range scan.
    pattern = "^" + re.escape(prefix.lower())
    cursor = users.find(
        {"username_lower": {"$regex": pattern}},
        sort=[("username_lower", 1)],
        limit=limit,
    )
    return await cursor.to_list()
