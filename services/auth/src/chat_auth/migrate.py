"""`chat-auth migrate-db --from chat`: copy auth's data out of a database shared with message.

Until the services had databases of their own (CONTRACT §7.5) both wrote to one
`chat` database. This copies what belongs to auth into auth's database
(`MONGODB_DB`, or `--to`): the users with their password hashes, the refresh
tokens, the blocks, and the events auth staged that were not yet published.
Documents are upserted by id, so the copy can be run again (say, once before
and once after stopping the old deployment) without duplicating anything.
The source is left as it was; drop what is copied from it once the message
service has copied its own part.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from typing import Any

from pymongo import MongoClient, ReplaceOne
from pymongo.collection import Collection

from chat_auth.settings import AuthSettings

log = logging.getLogger(__name__)

# Collection -> which of its documents are auth's (the outbox held both services' events).
AUTH_COLLECTIONS: dict[str, dict[str, Any]] = {
    "users": {},
    "refresh_tokens": {},
    "blocks": {},
    "outbox": {"envelopes.producer": "auth"},
}
BATCH = 500


def _batches(docs: Iterable[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def copy_collection(
    source: Collection[dict[str, Any]], target: Collection[dict[str, Any]], query: dict[str, Any]
) -> int:
    copied = 0
    for batch in _batches(source.find(query)):
        target.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in batch])
        copied += len(batch)
    return copied


def migrate(mongodb_url: str, source_db: str, target_db: str) -> dict[str, int]:
    """Copy auth's collections from `source_db` to `target_db`; how many documents of each."""
    if source_db == target_db:
        raise ValueError("the source and the target database are the same")
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_url, tz_aware=True)
    try:
        source, target = client[source_db], client[target_db]
        return {
            name: copy_collection(source[name], target[name], query)
            for name, query in AUTH_COLLECTIONS.items()
        }
    finally:
        client.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="chat-auth migrate-db",
        description="Copy auth's users, refresh tokens, blocks and unpublished events from a "
        "database shared with the message service into auth's own (MONGODB_URL must be an "
        "account that can read the source and write the target).",
    )
    parser.add_argument("--from", dest="source", required=True, help="the shared database")
    parser.add_argument("--to", dest="target", help="auth's database (default: MONGODB_DB)")
    args = parser.parse_args(argv)
    settings = AuthSettings()
    try:
        counts = migrate(settings.mongodb_url, args.source, args.target or settings.mongodb_db)
    except ValueError as exc:
        parser.error(str(exc))
    for name, count in counts.items():
        print(f"{name}: {count} documents copied")
