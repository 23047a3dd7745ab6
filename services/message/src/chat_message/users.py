"""The service's projection of registered users, fed by `user.registered`."""

from __future__ import annotations

from chat_contracts import Envelope, UserRegistered
from chat_message.context import MessageContext
from chat_platform.rabbit import ConsumerSpec, EventHandler


def on_user_registered(ctx: MessageContext) -> EventHandler:
    async def handle(envelope: Envelope) -> None:
        event = envelope.unwrap()
        assert isinstance(event, UserRegistered)
        user = event.user
        # An upsert makes a redelivered event harmless.
        await ctx.users.update_one(
            {"_id": user.id},
            {"$set": {"username": user.username, "created_at": user.created_at}},
            upsert=True,
        )

    return handle


def users_consumer(ctx: MessageContext) -> ConsumerSpec:
    return ConsumerSpec(
        queue=ctx.settings.queue_name("message.users"),
        routing_keys=[UserRegistered.type],
        handler=on_user_registered(ctx),
    )
