"""From the message service's events to every device of every member.

One shared queue for all gateways: each event is handled by one instance,
which emits through the Redis manager so that devices on every instance get
it. Events can arrive twice (the outbox publishes at least once); the id of
each is remembered for a while in Redis, in the same script that publishes
the emit, so a duplicate is dropped here for one round trip per event, and
clients dedupe by message id and seq for whatever slips through.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from chat_contracts import (
    ConversationUpdated,
    Envelope,
    Event,
    MessageCreated,
    MessageDeleted,
    MessageUpdated,
    PresenceChanged,
    ReceiptUpdated,
)
from chat_gateway import metrics
from chat_gateway.ordering import KeyedSequencer
from chat_gateway.redis_link import HeartbeatRedisManager
from chat_gateway.rooms import user_rooms
from chat_platform.rabbit import CommandClient, ConsumerSpec

ROUTING_KEYS = [
    MessageCreated.type,
    MessageUpdated.type,
    MessageDeleted.type,
    ReceiptUpdated.type,
    ConversationUpdated.type,
    PresenceChanged.type,
]

_MESSAGE_EVENTS = {
    MessageCreated.type: "message:new",
    MessageUpdated.type: "message:updated",
    MessageDeleted.type: "message:deleted",
}


class Fanout:
    def __init__(
        self,
        manager: HeartbeatRedisManager,
        redis: Redis,
        commands: CommandClient,
        *,
        seen_prefix: str,
        seen_ttl_seconds: int = 600,
    ) -> None:
        self.manager = manager
        self.redis = redis
        self.commands = commands
        self.seen_prefix = seen_prefix
        self.seen_ttl = seen_ttl_seconds
        self._sequencer = KeyedSequencer()

    def consumer(self, queue: str) -> ConsumerSpec:
        return ConsumerSpec(
            queue=queue, routing_keys=ROUTING_KEYS, handler=self.handle, prefetch=256
        )

    async def handle(self, envelope: Envelope) -> None:
        # Nothing may be awaited before this point: the sequencer relies on arrival order.
        key = str(
            envelope.data.get("conversation_id")
            or envelope.data.get("message", {}).get("conversation_id")
            or envelope.id
        )
        await self._sequencer.run(key, lambda: self._handle(envelope))

    async def _handle(self, envelope: Envelope) -> None:
        # Marked as seen by the publish itself, not before: an instance killed before it must
        # not make the redelivered event look like a duplicate and drop it.
        if await self._emit(envelope, envelope.unwrap(), envelope.data):
            metrics.FANOUT_SECONDS.observe(max(0.0, time.time() - envelope.occurred_at.timestamp()))
        else:
            metrics.DUPLICATE_EVENTS.inc()

    async def _emit(self, envelope: Envelope, event: Event, data: dict[str, Any]) -> bool:
        """Emit the event to its members' devices; False if it was emitted before."""
        name: str
        payload: dict[str, Any]
        if isinstance(event, MessageCreated | MessageUpdated | MessageDeleted):
            # The envelope's data is the validated event in JSON form already: emit it as it
            # is rather than dumping the model again (the hot path of every message).
            name, payload, members = (
                _MESSAGE_EVENTS[event.type],
                data["message"],
                event.member_ids,
            )
        elif isinstance(event, ReceiptUpdated):
            name, members = "receipt", event.member_ids
            payload = event.model_dump(mode="json", exclude={"member_ids"})
        elif isinstance(event, ConversationUpdated):
            name, payload = "conversation:updated", event.conversation.model_dump(mode="json")
            members = [*event.conversation.member_ids, *event.removed_member_ids]
        elif isinstance(event, PresenceChanged):
            result = await self.commands.call("user.contacts", {"user_id": event.user_id})
            name, members = "presence", result["user_ids"]
            payload = event.model_dump(mode="json")
        else:
            return True
        if not members:
            return True
        emitted = await self.manager.emit_once(
            self.redis,
            f"{self.seen_prefix}:{envelope.id}",
            self.seen_ttl,
            name,
            payload,
            user_rooms(members),
        )
        if emitted:
            metrics.EVENTS.labels("out", name).inc()
        return emitted
