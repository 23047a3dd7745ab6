"""The service's projection of users: who registered, who blocked whom, and their settings.

Fed by `user.registered`, `user.blocked`, `user.unblocked` and `user.settings_changed`
(auth owns the data, CONTRACT §7.5). Every write is conditional on the event being newer
than what is stored (`occurred_at`), so a redelivered or overtaken event changes nothing.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from chat_contracts import Envelope, UserRegistered
from chat_contracts.events import UserBlocked, UserSettingsChanged, UserUnblocked
from chat_message.store import Collection, Store, block_key
from chat_platform.amqp import ConsumerSpec
from chat_platform.mongo import Document


async def _apply_if_newer(
    collection: Collection, key: str, stamp: str, at: datetime, fields: Document
) -> None:
    """Set `fields` on document `key` unless it already holds a change newer than `at`."""
    # A duplicate key: the document exists with a newer change, this event was overtaken.
    with contextlib.suppress(DuplicateKeyError):
        await collection.update_one(
            {"_id": key, "$or": [{stamp: {"$exists": False}}, {stamp: {"$lte": at}}]},
            {"$set": {**fields, stamp: at}},
            upsert=True,
        )


def users_consumer(store: Store, queue: str) -> ConsumerSpec:
    async def on_user_event(envelope: Envelope) -> None:
        event = envelope.unwrap()
        at = envelope.occurred_at
        if isinstance(event, UserRegistered):
            user = event.user
            # An upsert makes a redelivered event harmless.
            await store.users.update_one(
                {"_id": user.id},
                {"$set": {"username": user.username, "created_at": user.created_at}},
                upsert=True,
            )
        elif isinstance(event, UserBlocked | UserUnblocked):
            await _apply_if_newer(
                store.blocks,
                block_key(event.blocker_id, event.blocked_id),
                "changed_at",
                at,
                {
                    "blocker_id": event.blocker_id,
                    "blocked_id": event.blocked_id,
                    "active": isinstance(event, UserBlocked),
                },
            )
        elif isinstance(event, UserSettingsChanged):
            await _apply_if_newer(
                store.users,
                event.user_id,
                "settings_at",
                at,
                {"settings": event.settings.model_dump(mode="json")},
            )

    return ConsumerSpec(
        queue=queue,
        routing_keys=[
            UserRegistered.type,
            UserBlocked.type,
            UserUnblocked.type,
            UserSettingsChanged.type,
        ],
        handler=on_user_event,
    )
