"""The service's projection of registered users, fed by `user.registered`."""

from __future__ import annotations

from chat_contracts import Envelope, UserRegistered
from chat_message.store import Store
from chat_platform.amqp import ConsumerSpec


def users_consumer(store: Store, queue: str) -> ConsumerSpec:
    async def on_user_registered(envelope: Envelope) -> None:
        event = envelope.unwrap()
        assert isinstance(event, UserRegistered)
        user = event.user
        # An upsert makes a redelivered event harmless.
        await store.users.update_one(
            {"_id": user.id},
            {"$set": {"username": user.username, "created_at": user.created_at}},
            upsert=True,
        )

    return ConsumerSpec(queue=queue, routing_keys=[UserRegistered.type], handler=on_user_registered)
