"""Presence and fan-out dedup on a real Redis (each test under its own key prefix)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import socketio
from gateway_fakes import FakeCommands
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

from chat_contracts import (
    Conversation,
    ConversationUpdated,
    Envelope,
    Message,
    MessageCreated,
    PresenceChanged,
    ReceiptUpdated,
    UserBlocked,
    UserSettings,
    UserSettingsChanged,
    UserUnblocked,
)
from chat_gateway.fanout import Fanout
from chat_gateway.presence import Presence, PresenceChange
from chat_gateway.redis_link import HeartbeatRedisManager
from chat_testkit import free_port

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def clean(redis: Redis, prefix: str) -> None:
    keys = [k async for k in redis.scan_iter(f"{prefix}*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture(autouse=True)
async def own_keys_removed(redis_client: Redis, namespace: str) -> Any:
    yield
    await clean(redis_client, namespace)


@pytest.fixture
def presence(redis_client: Redis, namespace: str) -> Presence:
    return Presence(redis_client, f"{namespace}:presence", ttl_seconds=1)


# --- presence -------------------------------------------------------------------------------------


async def test_online_with_the_first_device_offline_after_the_last(presence: Presence) -> None:
    assert await presence.connected("u1", "s1") is True
    assert await presence.connected("u1", "s2") is False
    assert (await presence.states(["u1"]))["u1"].online is True
    assert await presence.disconnected("u1", "s1") is None
    assert (await presence.states(["u1"]))["u1"].online is True
    last_seen = await presence.disconnected("u1", "s2")
    assert last_seen is not None
    assert abs((datetime.now(UTC) - last_seen).total_seconds()) < 5
    state = await presence.states(["u1", "nobody"])
    assert state["u1"].online is False
    assert state["u1"].last_seen == last_seen
    assert state["nobody"].online is False
    assert state["nobody"].last_seen is None
    # Saying it twice does not report the user leaving twice.
    assert await presence.disconnected("u1", "s2") is None


async def test_a_batch_of_connects_and_disconnects_is_applied_in_order_in_one_round_trip(
    presence: Presence,
) -> None:
    outcomes = await presence.apply(
        [
            PresenceChange("u1", "s1", online=True),
            PresenceChange("u2", "s3", online=True),
            PresenceChange("u1", "s2", online=True),
            PresenceChange("u1", "s1", online=False),
            PresenceChange("u2", "s3", online=False),
            PresenceChange("u2", "s3", online=False),
        ]
    )
    assert outcomes[:4] == [True, True, False, None]
    assert isinstance(outcomes[4], datetime)  # u2's last device went
    assert outcomes[5] is None  # saying it twice does not report it twice
    states = await presence.states(["u1", "u2"])
    assert states["u1"].online is True
    assert states["u2"].online is False
    assert states["u2"].last_seen == outcomes[4]


async def test_connections_nobody_renews_expire_and_are_swept_once(
    redis_client: Redis, namespace: str
) -> None:
    presence = Presence(redis_client, f"{namespace}:presence", ttl_seconds=2)
    await presence.connected("kept", "k1")
    await presence.connected("lost", "l1")
    await presence.connected("lost", "l2")
    for _ in range(6):
        await asyncio.sleep(0.4)
        assert await presence.renew([("kept", "k1")]) == []
    # `lost`'s gateway died: nobody renewed its two sockets.
    states = await presence.states(["kept", "lost"])
    assert states["kept"].online is True
    assert states["lost"].online is False
    swept = await presence.sweep()
    assert [user for user, _ in swept] == ["lost"]
    assert await presence.sweep() == []
    assert (await presence.states(["lost"]))["lost"].last_seen == swept[0][1]
    # The disconnect that never came, if it comes late, reports nothing more.
    assert await presence.disconnected("lost", "l1") is None


async def test_renewal_restores_what_redis_lost(
    presence: Presence, redis_client: Redis, namespace: str
) -> None:
    await presence.connected("u1", "s1")
    await clean(redis_client, namespace)  # a restart without persistence
    assert (await presence.states(["u1"]))["u1"].online is False
    assert await presence.renew([("u1", "s1")]) == [("u1", "s1")]
    assert (await presence.states(["u1"]))["u1"].online is True
    assert await presence.renew([("u1", "s1")]) == []
    # Restored entries expire and sweep like any other.
    await asyncio.sleep(1.1)
    assert [user for user, _ in await presence.sweep()] == ["u1"]


# --- fan-out --------------------------------------------------------------------------------------


def message(seq: int = 1) -> Message:
    return Message(
        id=f"m{seq}",
        conversation_id="c1",
        seq=seq,
        sender_id="u1",
        client_msg_id=f"k{seq}",
        text="hi",
        attachments=[],
        reply_to_id=None,
        created_at=NOW,
        edited_at=None,
        deleted=False,
    )


@dataclass
class Channel:
    """The Socket.IO manager's Redis channel, as another gateway instance hears it."""

    pubsub: PubSub

    async def emits(self) -> list[tuple[str, Any, Any]]:
        """(event, data, rooms) of every emit published so far."""
        found = []
        while (item := await self.pubsub.get_message(timeout=0.2)) is not None:
            if item["type"] == "message":
                body = json.loads(item["data"])
                if body.get("method") == "emit":
                    found.append((body["event"], body["data"][0], body["room"]))
        return found


@pytest.fixture
async def manager(redis_url: str, namespace: str) -> HeartbeatRedisManager:
    manager = HeartbeatRedisManager(
        redis_url, channel=f"{namespace}:socketio", interval=1, stale_after=5
    )
    # A server with no sockets: the local delivery runs and reaches nobody.
    socketio.AsyncServer(async_mode="asgi", client_manager=manager)
    return manager


@pytest.fixture
async def channel(redis_client: Redis, manager: HeartbeatRedisManager) -> AsyncIterator[Channel]:
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(manager.channel)
    await pubsub.get_message(timeout=1)  # the subscription's confirmation
    yield Channel(pubsub)
    await pubsub.aclose()


@pytest.fixture
def commands() -> FakeCommands:
    return FakeCommands(
        {
            "presence.audience": {"user_ids": ["u2", "u3"]},
            "user.contacts": {"user_ids": ["u2", "u3", "u4"]},
            "presence.visible": lambda p: {"user_ids": p["user_ids"]},
        }
    )


@pytest.fixture
def fanout(
    redis_client: Redis,
    namespace: str,
    manager: HeartbeatRedisManager,
    presence: Presence,
    commands: FakeCommands,
) -> Fanout:
    return Fanout(
        manager, redis_client, cast(Any, commands), presence, seen_prefix=f"{namespace}:seen"
    )


async def test_a_message_goes_to_every_member_room_once_however_often_it_comes(
    fanout: Fanout, channel: Channel
) -> None:
    envelope = Envelope.wrap(MessageCreated(message=message(), member_ids=["u1", "u2"]), "test")
    await fanout.handle(envelope)
    await fanout.handle(envelope)
    await fanout.handle(Envelope.model_validate_json(envelope.model_dump_json()))
    assert await channel.emits() == [
        ("message:new", message().model_dump(mode="json"), ["u:u1", "u:u2"])
    ]


async def test_an_event_that_failed_to_go_out_goes_out_on_redelivery(
    fanout: Fanout, channel: Channel
) -> None:
    envelope = Envelope.wrap(MessageCreated(message=message(), member_ids=["u1"]), "test")
    working = fanout.redis
    # Redis unreachable at the moment of the emit: nothing is marked as emitted either.
    fanout.redis = Redis(port=free_port(), socket_connect_timeout=0.5)
    with pytest.raises(RedisConnectionError):
        await fanout.handle(envelope)
    await fanout.redis.aclose()
    fanout.redis = working
    await fanout.handle(envelope)
    assert [name for name, _, _ in await channel.emits()] == ["message:new"]


async def test_receipts_membership_and_presence_go_to_the_right_rooms(
    fanout: Fanout, channel: Channel
) -> None:
    receipt = ReceiptUpdated(
        conversation_id="c1", user_id="u2", kind="read", seq=3, member_ids=["u1", "u2"]
    )
    conversation = Conversation(
        id="c1",
        type="group",
        title="t",
        member_ids=["u1", "u2"],
        created_at=NOW,
        updated_at=NOW,
        last_seq=3,
        last_message=None,
    )
    await fanout.handle(Envelope.wrap(receipt, "test"))
    await fanout.handle(
        Envelope.wrap(
            ConversationUpdated(conversation=conversation, removed_member_ids=["u9"]), "test"
        )
    )
    await fanout.handle(
        Envelope.wrap(PresenceChanged(user_id="u1", online=False, last_seen=NOW), "test")
    )
    emits = await channel.emits()
    assert emits[0] == (
        "receipt",
        {"conversation_id": "c1", "user_id": "u2", "kind": "read", "seq": 3},
        ["u:u1", "u:u2"],
    )
    assert emits[1] == (
        "conversation:updated",
        conversation.model_dump(mode="json"),
        ["u:u1", "u:u2", "u:u9"],  # the removed member is told too
    )
    assert emits[2] == (
        "presence",
        {"user_id": "u1", "online": False, "last_seen": "2026-01-01T00:00:00Z"},
        ["u:u2", "u:u3"],
    )
    assert len(emits) == 3
    commands = cast(FakeCommands, fanout.commands)
    assert commands.calls == [("presence.audience", {"user_id": "u1"})]


async def test_presence_of_a_user_nobody_may_see_goes_nowhere(
    fanout: Fanout, channel: Channel
) -> None:
    cast(FakeCommands, fanout.commands).replies["presence.audience"] = {"user_ids": []}
    await fanout.handle(
        Envelope.wrap(PresenceChanged(user_id="u1", online=True, last_seen=None), "test")
    )
    assert await channel.emits() == []


async def test_emit_once_publishes_what_emit_publishes(
    redis_client: Redis, channel: Channel, manager: HeartbeatRedisManager, namespace: str
) -> None:
    """The fan-out builds python-socketio's pub/sub message itself (one script marks the event
    seen and publishes it); this holds it to the message the library's own `emit` publishes,
    byte for byte once parsed, so that an upgrade that changes the format fails here."""
    payload = message().model_dump(mode="json")
    rooms = ["u:u1", "u:u2"]
    await manager.emit("message:new", payload, room=rooms)
    emitted = await manager.emit_once(
        redis_client, f"{namespace}:seen:compat", 60, "message:new", payload, rooms
    )
    assert emitted
    published = []
    while (item := await channel.pubsub.get_message(timeout=0.5)) is not None:
        if item["type"] == "message":
            published.append(json.loads(item["data"]))
    by_library, by_fanout = [p for p in published if p.get("method") == "emit"]
    assert by_fanout == by_library


async def test_a_block_hides_the_blocker_from_the_blocked_at_once_and_unblocking_shows_them(
    fanout: Fanout, channel: Channel, presence: Presence, commands: FakeCommands
) -> None:
    await presence.connected("u1", "s1")
    await fanout.handle(Envelope.wrap(UserBlocked(blocker_id="u1", blocked_id="u2"), "auth"))
    hidden = {"user_id": "u1", "online": False, "last_seen": None}
    assert await channel.emits() == [("presence", hidden, ["u:u2"])]

    await fanout.handle(Envelope.wrap(UserUnblocked(blocker_id="u1", blocked_id="u2"), "auth"))
    assert await channel.emits() == [
        ("presence", {"user_id": "u1", "online": True, "last_seen": None}, ["u:u2"])
    ]
    # Unblocked, yet not someone the settings let see it: nothing is shown.
    commands.replies["presence.visible"] = {"user_ids": []}
    await fanout.handle(Envelope.wrap(UserUnblocked(blocker_id="u1", blocked_id="u3"), "auth"))
    assert await channel.emits() == []


async def test_settings_that_hide_presence_reach_every_co_member_and_showing_it_the_audience(
    fanout: Fanout, channel: Channel, presence: Presence
) -> None:
    await presence.connected("u1", "s1")
    nobody = UserSettingsChanged(user_id="u1", settings=UserSettings(presence_visible_to="nobody"))
    await fanout.handle(Envelope.wrap(nobody, "auth"))
    hidden = {"user_id": "u1", "online": False, "last_seen": None}
    assert await channel.emits() == [("presence", hidden, ["u:u2", "u:u3", "u:u4"])]

    contacts = UserSettingsChanged(user_id="u1", settings=UserSettings())
    await fanout.handle(Envelope.wrap(contacts, "auth"))
    shown = {"user_id": "u1", "online": True, "last_seen": None}
    assert await channel.emits() == [("presence", shown, ["u:u2", "u:u3"])]
