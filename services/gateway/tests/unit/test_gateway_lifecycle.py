"""Connections: who gets in, typing that ends by itself, expiry, draining, presence upkeep."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import socketio
from gateway_fakes import Harness, claims, message_json

TIMEOUT = 0.05  # typing timeout in these tests


def typing_emits(h: Harness) -> list[tuple[str, bool, list[str]]]:
    return [(d["user_id"], d["is_typing"], to) for d, to in h.sio.of("typing")]


def typing_harness(**settings: Any) -> Harness:
    h = Harness(typing_timeout_seconds=TIMEOUT, **settings)
    h.commands.replies = {
        "conversation.members": {"member_ids": ["u1", "u2", "u3"]},
        "message.send": {"message": message_json("m1"), "created": True},
    }
    return h


async def test_typing_reaches_the_other_members_and_stops_by_itself() -> None:
    h = typing_harness()
    h.connect("s1", "u1")
    assert await h.event("typing", "s1", {"conversation_id": "c1", "is_typing": True}) == {
        "ok": True
    }
    assert typing_emits(h) == [("u1", True, ["u:u2", "u:u3"])]
    await asyncio.sleep(TIMEOUT * 3)
    assert typing_emits(h) == [("u1", True, ["u:u2", "u:u3"]), ("u1", False, ["u:u2", "u:u3"])]


async def test_typing_again_restarts_the_timer_and_a_stop_cancels_it() -> None:
    h = typing_harness()
    h.connect("s1", "u1")
    await h.event("typing", "s1", {"conversation_id": "c1", "is_typing": True})
    await asyncio.sleep(TIMEOUT * 0.6)
    await h.event("typing", "s1", {"conversation_id": "c1", "is_typing": True})
    await asyncio.sleep(TIMEOUT * 0.6)
    assert [flag for _, flag, _ in typing_emits(h)] == [True, True]  # not yet stopped
    await h.event("typing", "s1", {"conversation_id": "c1", "is_typing": False})
    await asyncio.sleep(TIMEOUT * 3)
    assert [flag for _, flag, _ in typing_emits(h)] == [True, True, False]


async def test_sending_a_message_ends_typing_once() -> None:
    h = typing_harness()
    h.connect("s1", "u1")
    await h.event("typing", "s1", {"conversation_id": "c1", "is_typing": True})
    ack = await h.event(
        "message:send", "s1", {"conversation_id": "c1", "client_msg_id": "k", "text": "hi"}
    )
    assert ack["ok"] is True
    await asyncio.sleep(TIMEOUT * 3)
    # The stop said by the send; the timer that would have said it again was cancelled.
    assert [flag for _, flag, _ in typing_emits(h)] == [True, False]


async def test_a_disconnect_ends_typing() -> None:
    h = typing_harness()
    h.connect("s1", "u1")
    await h.event("typing", "s1", {"conversation_id": "c1", "is_typing": True})
    h.sio.manager.connected.discard("s1")  # as Socket.IO does before the disconnect handler
    await h.sio.handlers["disconnect"]("s1", "transport close")
    await asyncio.sleep(TIMEOUT * 3)
    assert [flag for _, flag, _ in typing_emits(h)] == [True, False]


async def test_typing_is_dropped_first_under_load() -> None:
    h = typing_harness(ephemeral_inflight_max=0)
    h.connect("s1", "u1")
    assert (await h.event("typing", "s1", {"conversation_id": "c1", "is_typing": True}))["ok"]
    assert typing_emits(h) == []


async def test_a_valid_token_connects_into_the_users_room_and_reports_online() -> None:
    h = Harness()
    h.verifier.tokens["good"] = claims("u1", time.time() + 900)
    environ: dict[str, Any] = {}
    assert await h.sio.handlers["connect"]("s1", environ, {"token": "good"}) is None
    assert h.sio.rooms == [("s1", "u:u1")]
    assert h.realtime.connections.get("s1") is not None
    (envelope,) = h.broker.published
    assert envelope.type == "presence.changed"
    assert envelope.data["user_id"] == "u1"
    assert envelope.data["online"] is True
    # A second device: the user was online already, nobody needs telling.
    h.verifier.tokens["good2"] = claims("u1", time.time() + 900)
    await h.sio.handlers["connect"]("s2", environ, {"token": "good2"})
    assert len(h.broker.published) == 1


@pytest.mark.parametrize("auth", [None, {}, {"token": None}, {"token": "bad"}, "good", ["good"]])
async def test_connections_without_a_valid_token_are_refused_with_the_error_shape(
    auth: Any,
) -> None:
    h = Harness()
    h.verifier.tokens["good"] = claims("u1", time.time() + 900)
    with pytest.raises(socketio.exceptions.ConnectionRefusedError) as refused:
        await h.sio.handlers["connect"]("s1", {}, auth)
    message = refused.value.error_args["message"]
    data = refused.value.error_args["data"]
    assert message == "unauthorized"
    assert data["error"]["code"] == "unauthorized"
    assert data["error"]["message"]
    assert h.realtime.connections.get("s1") is None
    assert h.broker.published == []


async def test_a_draining_gateway_refuses_new_connections_as_unavailable() -> None:
    h = Harness()
    h.verifier.tokens["good"] = claims("u1", time.time() + 900)
    await h.realtime.lifecycle.drain(0.01)
    with pytest.raises(socketio.exceptions.ConnectionRefusedError) as refused:
        await h.sio.handlers["connect"]("s1", {}, {"token": "good"})
    assert refused.value.error_args["data"]["error"]["code"] == "unavailable"


async def test_client_events_named_connect_or_disconnect_touch_nothing() -> None:
    """Socket.IO routes a client's `connect`/`disconnect` events to the lifecycle handlers."""
    h = Harness()
    h.verifier.tokens["good"] = claims("u1", time.time() + 900)
    await h.sio.handlers["connect"]("s1", {}, {"token": "good"})
    h.sio.manager.connected.add("s1")  # Socket.IO has confirmed the connection
    published = len(h.broker.published)

    args: tuple[object, ...]
    for args in [(), ({"token": "good"},), ("a", "b", "c")]:
        ack = await h.event("connect", "s1", *args)
        assert ack["ok"] is False
        assert ack["error"]["code"] == "not_found"
    for args in [(), ("bye",), ({"a": 1}, 2)]:
        ack = await h.event("disconnect", "s1", *args)
        assert ack["ok"] is False
        assert ack["error"]["code"] == "not_found"

    # Still connected, still online, nothing published about it.
    assert h.realtime.connections.get("s1") is not None
    assert h.presence.live == {"u1": {"s1"}}
    assert len(h.broker.published) == published


async def test_the_real_disconnect_reports_offline_with_last_seen() -> None:
    h = Harness()
    h.verifier.tokens["good"] = claims("u1", time.time() + 900)
    await h.sio.handlers["connect"]("s1", {}, {"token": "good"})
    # Socket.IO marks the socket as disconnecting before calling the handler.
    assert await h.sio.handlers["disconnect"]("s1", "client namespace disconnect") is None
    assert h.realtime.connections.get("s1") is None
    offline = h.broker.published[-1]
    assert offline.data["online"] is False
    assert offline.data["last_seen"] is not None


async def test_auth_refresh_extends_the_connection_for_the_same_user_only() -> None:
    h = Harness()
    connection = h.connect("s1", "u1", expires_at=time.time() + 5)
    later = time.time() + 900
    h.verifier.tokens = {"mine": claims("u1", later), "theirs": claims("u2", later + 100)}
    assert await h.event("auth:refresh", "s1", {"token": "mine"}) == {"ok": True}
    assert connection.token_expires_at == int(later)
    ack = await h.event("auth:refresh", "s1", {"token": "theirs"})
    assert ack["error"]["code"] == "forbidden"
    ack = await h.event("auth:refresh", "s1", {"token": "garbage"})
    assert ack["error"]["code"] == "unauthorized"
    assert connection.token_expires_at == int(later)


async def test_expired_connections_are_closed_after_the_grace_period_only() -> None:
    h = Harness(token_grace_seconds=30)
    now = time.time()
    h.connect("fresh", "u1", expires_at=now + 60)
    h.connect("in-grace", "u2", expires_at=now - 10)
    h.connect("lapsed", "u3", expires_at=now - 31)
    assert await h.realtime.lifecycle.close_expired() == 1
    assert h.sio.disconnected == ["lapsed"]


async def test_drain_disconnects_everyone_in_batches_and_waits_for_sends_in_flight() -> None:
    h = Harness()
    for n in range(45):
        h.connect(f"s{n}", f"u{n}")
    gate = asyncio.Event()

    async def slow_send(payload: dict[str, Any]) -> dict[str, Any]:
        await gate.wait()
        return {"message": message_json("m"), "created": True}

    h.commands.replies["message.send"] = slow_send
    sending = asyncio.create_task(
        h.event("message:send", "s0", {"conversation_id": "c", "client_msg_id": "k", "text": "x"})
    )
    await asyncio.sleep(0.01)
    draining = asyncio.create_task(h.realtime.lifecycle.drain(0.2, batches=5))
    await asyncio.sleep(0.02)
    # Spread over time: after the first pause only the first batch (of 9) is gone.
    assert h.sio.disconnected == [f"s{n}" for n in range(9)]
    await asyncio.sleep(0.3)
    assert sorted(h.sio.disconnected) == sorted(f"s{n}" for n in range(45))
    assert not draining.done(), "drain returned with a send still in flight"
    gate.set()
    assert (await sending)["ok"] is True
    await asyncio.wait_for(draining, 1)


async def test_renewal_takes_back_a_restored_entry_whose_socket_closed_meanwhile() -> None:
    h = Harness()
    h.connect("s1", "u1")
    # Redis had lost both entries; s2 disconnected while the renewal ran.
    h.presence.restored = [("u1", "s1"), ("u2", "s2")]
    await h.realtime.lifecycle.renew_presence()
    assert h.presence.renewed == [("u1", "s1")]
    assert h.presence.live == {"u1": {"s1"}, "u2": set()}
