"""Refresh tokens: opaque, stored only as a hash, rotated on every use.

Each login starts a family. Using a token marks it used and issues the next
one in the family; presenting a used token again means it was stolen (or
replayed), so the whole family is revoked and every token of it stops working.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection

from chat_contracts import ErrorCode
from chat_contracts.errors import ApiError
from chat_platform.mongo import Document, Index

log = logging.getLogger(__name__)

INDEXES = [
    Index("refresh_tokens", [("family_id", 1)], {"name": "family"}),
    Index("refresh_tokens", [("expires_at", 1)], {"name": "expiry", "expireAfterSeconds": 0}),
]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invalid_refresh() -> ApiError:
    return ApiError(ErrorCode.UNAUTHORIZED, "The refresh token is not valid.")


class RefreshTokens:
    def __init__(self, collection: AsyncCollection[Document], ttl: timedelta) -> None:
        self.collection = collection
        self.ttl = ttl

    async def issue(self, user_id: str, family_id: str | None = None) -> str:
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        await self.collection.insert_one(
            {
                "_id": token_hash(token),
                "family_id": family_id or secrets.token_hex(16),
                "user_id": user_id,
                "created_at": now,
                "expires_at": now + self.ttl,
                "used_at": None,
                "revoked": False,
            }
        )
        return token

    async def rotate(self, token: str) -> tuple[str, str]:
        """Spend `token`; the (user_id, next token). Reuse revokes the family (401)."""
        now = datetime.now(UTC)
        spent = await self.collection.find_one_and_update(
            {
                "_id": token_hash(token),
                "used_at": None,
                "revoked": False,
                "expires_at": {"$gt": now},
            },
            {"$set": {"used_at": now}},
        )
        if spent is None:
            known = await self.collection.find_one({"_id": token_hash(token)})
            if known is not None and known["used_at"] is not None and not known["revoked"]:
                await self.revoke_family(known["family_id"])
                log.warning(
                    "refresh token reused; login revoked",
                    extra={"user_id": known["user_id"], "family_id": known["family_id"]},
                )
            raise invalid_refresh()
        return spent["user_id"], await self.issue(spent["user_id"], spent["family_id"])

    async def revoke_family(self, family_id: str) -> None:
        await self.collection.update_many({"family_id": family_id}, {"$set": {"revoked": True}})

    async def revoke(self, token: str) -> None:
        known = await self.collection.find_one({"_id": token_hash(token)})
        if known is not None:
            await self.revoke_family(known["family_id"])
