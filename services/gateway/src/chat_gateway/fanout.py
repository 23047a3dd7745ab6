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

from chat_contracts import events
from chat_contracts.commands import PresenceAudience, UserContacts, VisiblePresence
from chat_gateway import metrics
from chat_gateway.ordering import KeyedSequencer
from chat_gateway.presence import Presence
from chat_gateway.redis_link import HeartbeatRedisManager
from chat_gateway.rooms import user_rooms
from chat_platform.amqp import CommandClient, ConsumerSpec

# The socket event each message event becomes.
_MESSAGE_EVENTS = {
    events.MessageCreated.type: "message:new",
    events.MessageUpdated.type: "message:updated",
    events.MessageDeleted.type: "message:deleted",
}

ROUTING_KEYS = [
    *_MESSAGE_EVENTS,
    events.ReceiptUpdated.type,
    events.ConversationUpdated.type,
    events.PresenceChanged.type,
    # Who may see a user's presence changes with these: devices that showed it are told.
    events.UserBlocked.type,
    events.UserUnblocked.type,
    events.UserSettingsChanged.type,
]

# An emit: the socket event's name, its payload, and the users whose devices get it.
Emit = tuple[str, Any, list[str]]


class Fanout:
    def __init__(
        self,
        manager: HeartbeatRedisManager,
        redis: Redis,
        commands: CommandClient,
        presence: Presence,
        *,
        seen_prefix: str,
        seen_ttl_seconds: int = 600,
    ) -> None:
        self.manager = manager
        self.redis = redis
        self.commands = commands
        self.presence = presence
        self.seen_prefix = seen_prefix
        self.seen_ttl = seen_ttl_seconds
        self._sequencer = KeyedSequencer()

    def consumer(self, queue: str) -> ConsumerSpec:
        return ConsumerSpec(
            queue=queue, routing_keys=ROUTING_KEYS, handler=self.handle, prefetch=256
        )

    async def handle(self, envelope: events.Envelope) -> None:
        # Nothing may be awaited before this point: the sequencer relies on arrival order.
        key = str(
            envelope.data.get("conversation_id")
            or envelope.data.get("message", {}).get("conversation_id")
            or envelope.id
        )
        await self._sequencer.run(key, lambda: self._handle(envelope))

    async def _handle(self, envelope: events.Envelope) -> None:
        emit = await self._emit_of(envelope.unwrap(), envelope.data)
        if emit is None:
            return
        name, payload, members = emit
        # Marked as seen by the publish itself, not before: an instance killed before it must
        # not make the redelivered event look like a duplicate and drop it.
        try:
            emitted = await self.manager.emit_once(
                self.redis,
                f"{self.seen_prefix}:{envelope.id}",
                self.seen_ttl,
                name,
                payload,
                user_rooms(members),
            )
        except Exception:
            # The event is retried, but devices that got nothing meanwhile are asked to sync.
            self.manager.missed("emit_failed")
            raise
        if emitted:
            metrics.EVENTS.labels("out", name).inc()
            metrics.FANOUT_SECONDS.observe(max(0.0, time.time() - envelope.occurred_at.timestamp()))
        else:
            metrics.DUPLICATE_EVENTS.inc()

    async def _emit_of(self, event: events.Event, data: dict[str, Any]) -> Emit | None:
        """What the event becomes on the devices; None for an event nobody is to see."""
        emit: Emit
        if isinstance(event, events.MessageEvent):
            # The envelope's data is the validated event in JSON form already: emit it as it
            # is rather than dumping the model again (the hot path of every message).
            emit = (_MESSAGE_EVENTS[event.type], data["message"], event.member_ids)
        elif isinstance(event, events.ReceiptUpdated):
            payload = event.model_dump(mode="json", exclude={"member_ids"})
            emit = ("receipt", payload, event.member_ids)
        elif isinstance(event, events.ConversationUpdated):
            members = [*event.conversation.member_ids, *event.removed_member_ids]
            emit = ("conversation:updated", event.conversation.model_dump(mode="json"), members)
        elif isinstance(event, events.PresenceChanged):
            # The message service knows the subject's settings, blocks and contacts (§7.2).
            audience = await self.commands.call(PresenceAudience(user_id=event.user_id))
            emit = ("presence", event.model_dump(mode="json"), audience.user_ids)
        elif isinstance(event, events.UserBlocked):
            # The blocked user's devices stop showing the blocker at once, not at the next change.
            emit = ("presence", _hidden(event.blocker_id), [event.blocked_id])
        elif isinstance(event, events.UserUnblocked):
            visible = await self.commands.call(
                VisiblePresence(viewer_id=event.blocked_id, user_ids=[event.blocker_id])
            )
            shown_to = [event.blocked_id] if visible.user_ids else []
            emit = ("presence", await self._shown(event.blocker_id), shown_to)
        elif isinstance(event, events.UserSettingsChanged):
            emit = await self._visibility_changed(event.user_id, event.settings.presence_visible_to)
        else:
            return None
        return emit if emit[2] else None

    async def _visibility_changed(self, user_id: str, visible_to: str) -> Emit:
        if visible_to == "nobody":
            # Everyone who shares a conversation may have been shown it: all of them forget it.
            co_members = await self.commands.call(UserContacts(user_id=user_id))
            return ("presence", _hidden(user_id), co_members.user_ids)
        audience = await self.commands.call(PresenceAudience(user_id=user_id))
        return ("presence", await self._shown(user_id), audience.user_ids)

    async def _shown(self, user_id: str) -> dict[str, Any]:
        """The user's presence as it is now, in the `presence` event's shape."""
        state = (await self.presence.states([user_id]))[user_id]
        last_seen = state.last_seen.isoformat().replace("+00:00", "Z") if state.last_seen else None
        return {"user_id": user_id, "online": state.online, "last_seen": last_seen}


def _hidden(user_id: str) -> dict[str, Any]:
    """What a device shows of someone whose presence it may no longer see: offline, never seen."""
    return {"user_id": user_id, "online": False, "last_seen": None}
