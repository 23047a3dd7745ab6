"""The message service's database read directly, to prove what was (and was not) written."""

from __future__ import annotations

from typing import Any

from pymongo import MongoClient

# Every collection the message service writes user data into.
MESSAGE_COLLECTIONS = (
    "conversations",
    "direct_pairs",
    "members",
    "messages",
    "attachments",
    "fs.files",
    "fs.chunks",
)


class Stored:
    """`stored()`: the count of each collection; `stored.messages(**query)`: matching messages."""

    def __init__(self, mongodb_url: str, db_name: str) -> None:
        self.client: MongoClient[dict[str, Any]] = MongoClient(
            mongodb_url, serverSelectionTimeoutMS=5000, tz_aware=True
        )
        self.db = self.client[db_name]

    def __call__(self) -> dict[str, int]:
        return {name: self.db[name].count_documents({}) for name in MESSAGE_COLLECTIONS}

    def messages(self, **query: Any) -> int:
        return self.db["messages"].count_documents(query)

    def close(self) -> None:
        self.client.close()
