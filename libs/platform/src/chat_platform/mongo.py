"""MongoDB through pymongo's async API: the client factory and index bootstrap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]


def create_mongo_client(url: str, *, app_name: str) -> AsyncMongoClient[Document]:
    """A client that speaks timezone-aware datetimes and fails fast when the server is gone.

    Every write is acknowledged only once a majority of the replica set has it in its
    journal (`w: majority, j: true`), and a write that meets a failover is retried once:
    what a service acknowledges to a client (a stored message, a moved cursor, a user) then
    survives the loss of any one database node.
    """
    return AsyncMongoClient(
        url,
        tz_aware=True,
        appname=app_name,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
        w="majority",
        journal=True,
        retryWrites=True,
    )


@dataclass(frozen=True)
class Index:
    collection: str
    keys: Sequence[tuple[str, int]]
    options: dict[str, Any] = field(default_factory=dict)


async def ensure_indexes(db: AsyncDatabase[Document], indexes: Sequence[Index]) -> None:
    """Create the service's indexes at start-up; creating an existing index is a no-op."""
    for index in indexes:
        await db[index.collection].create_index(list(index.keys), **index.options)


def mongo_check(client: AsyncMongoClient[Document]) -> Any:
    async def check() -> None:
        await client.admin.command("ping")

    return check
