"""The pieces around the handlers: heartbeat health, packet hygiene, SIGTERM draining."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
import uvicorn

from chat_contracts import ErrorCode
from chat_contracts.errors import ApiError
from chat_gateway.__main__ import DrainingServer
from chat_gateway.redis_link import HeartbeatRedisManager
from chat_gateway.rooms import user_room, user_rooms
from chat_gateway.sio_server import GatewayServer

# --- the heartbeat that proves the Redis subscriber alive -----------------------------------------


def manager() -> HeartbeatRedisManager:
    # Nothing connects until the manager is initialized by a server, which these tests skip.
    return HeartbeatRedisManager("redis://127.0.0.1:1/0", "chan", interval=0.01, stale_after=0.2)


def feed(monkeypatch: pytest.MonkeyPatch, frames: list[Any]) -> None:
    async def listen(self: Any) -> AsyncIterator[Any]:
        for frame in frames:
            yield frame

    monkeypatch.setattr(socketio.AsyncRedisManager, "_listen", listen)


async def drain_listen(m: HeartbeatRedisManager) -> list[Any]:
    return [data async for data in m._listen()]


async def test_not_healthy_until_it_hears_its_own_heartbeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = manager()
    assert not m.healthy
    other = json.dumps({"method": "chat-heartbeat", "host_id": "someone-else"})
    emit = json.dumps({"method": "emit", "event": "x"})
    feed(monkeypatch, [other, emit.encode()])
    # Other instances' heartbeats are swallowed, everything else passes through, parsed.
    assert await drain_listen(m) == [json.loads(emit)]
    assert not m.healthy
    own = json.dumps({"method": "chat-heartbeat", "host_id": m.host_id})
    feed(monkeypatch, [own.encode()])
    assert await drain_listen(m) == []
    assert m.healthy
    await m.check()


async def test_a_message_that_mentions_the_heartbeat_is_delivered_like_any_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = manager()
    text = {"text": 'say "chat-heartbeat" and {"method": "chat-heartbeat"}', "host_id": m.host_id}
    emit = json.dumps({"method": "emit", "event": "message:new", "data": [text]})
    feed(monkeypatch, [emit.encode(), emit, b"not json", b"\xff"])
    assert await drain_listen(m) == [json.loads(emit), json.loads(emit), b"not json", b"\xff"]
    assert not m.healthy


async def test_after_a_reconnect_its_sockets_are_asked_to_sync_once_it_hears_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = manager()
    asked: list[str] = []

    async def ask(reason: str) -> None:
        asked.append(reason)

    m.on_missed = ask
    monkeypatch.setattr(socketio.AsyncRedisManager, "_redis_connect", lambda self: None)
    own = json.dumps({"method": "chat-heartbeat", "host_id": m.host_id})
    m._redis_connect()  # the first connection: nothing was missed
    feed(monkeypatch, [own])
    await drain_listen(m)
    await asyncio.sleep(0)
    assert asked == []
    m._redis_connect()  # the listener resubscribing after an error
    m._redis_connect()  # and a publish reconnecting: still one catch-up
    assert asked == []  # not before the subscription is proven
    feed(monkeypatch, [own, own])
    await drain_listen(m)
    await asyncio.sleep(0)
    assert asked == ["redis_reconnected"]
    m.missed("emit_failed")
    feed(monkeypatch, [own])
    await drain_listen(m)
    await asyncio.sleep(0)
    assert asked == ["redis_reconnected", "emit_failed"]


async def test_a_reconnect_makes_it_unhealthy_until_heard_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = manager()
    own = json.dumps({"method": "chat-heartbeat", "host_id": m.host_id})
    feed(monkeypatch, [own])
    await drain_listen(m)
    assert m.healthy
    monkeypatch.setattr(socketio.AsyncRedisManager, "_redis_connect", lambda self: None)
    m._redis_connect()  # the listener resubscribing, or a publish reconnecting
    assert not m.healthy
    with pytest.raises(ConnectionError):
        await m.check()
    await drain_listen(m)
    assert m.healthy


async def test_silence_goes_stale() -> None:
    m = manager()
    m.last_heard = m.connected_at + 0.001
    assert m.healthy
    await asyncio.sleep(0.25)
    assert not m.healthy


async def test_a_silent_subscriber_is_closed_to_force_a_resubscription(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = manager()
    published: list[Any] = []
    closed: list[bool] = []

    async def publish(self: Any, data: Any) -> None:
        published.append(data)

    class Subscription:
        async def aclose(self) -> None:
            closed.append(True)

    monkeypatch.setattr(socketio.AsyncRedisManager, "_publish", publish)
    m.pubsub = Subscription()
    m.connected_at -= 1  # silent for longer than stale_after
    beating = asyncio.create_task(m.heartbeat_forever())
    await asyncio.sleep(0.05)
    beating.cancel()
    assert published
    assert all(p == {"method": "chat-heartbeat", "host_id": m.host_id} for p in published)
    # Closed once, then given a full window to come back rather than closed on every beat.
    assert closed == [True]
    assert not m.healthy


# --- packets no client library would send ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (["typing", {"a": 1}], ["typing", {"a": 1}]),
        ([], ["<malformed>"]),
        ({"a": 1}, ["<malformed>"]),
        ("typing", ["<malformed>"]),
        (None, ["<malformed>"]),
        ([7, {"a": 1}], ["<int>", {"a": 1}]),
        ([{"a": 1}, 2], ["<dict>", 2]),
        ([None], ["<NoneType>"]),
    ],
)
async def test_event_packets_without_a_string_name_become_unknown_events(
    monkeypatch: pytest.MonkeyPatch, data: Any, expected: list[Any]
) -> None:
    seen: list[Any] = []

    async def handle_event(self: Any, eio_sid: str, namespace: Any, id: Any, data: Any) -> None:
        seen.append(data)

    monkeypatch.setattr(socketio.AsyncServer, "_handle_event", handle_event)
    await GatewayServer()._handle_event("e1", "/", 3, data)
    assert seen == [expected]


async def test_undecodable_frames_are_dropped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(self: Any, eio_sid: str, data: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded while decoding")

    monkeypatch.setattr(socketio.AsyncServer, "_handle_eio_message", explode)
    await GatewayServer()._handle_eio_message("e1", "42[" * 10)
    (record,) = [r for r in caplog.records if r.name == "chat_gateway.sio_server"]
    assert record.levelname == "WARNING"
    assert record.exc_info is None
    assert "RecursionError" in record.__dict__["error"]


async def test_a_binary_packet_that_does_not_fit_is_dropped_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def explode(self: Any, eio_sid: str, data: Any) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(socketio.AsyncServer, "_handle_eio_message", explode)
    server = GatewayServer()
    server._binary_packet["e1"] = object()
    await server._handle_eio_message("e1", b"\x00")
    assert "e1" not in server._binary_packet


async def test_a_binary_packet_announcing_many_attachments_is_not_held(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = GatewayServer()
    server.manager.sid_from_eio_sid = lambda eio_sid, namespace: "s1"
    await server._handle_eio_message("e1", '59-["typing",{"_placeholder":true,"num":0}]')
    assert "e1" not in server._binary_packet
    (record,) = [r for r in caplog.records if r.name == "chat_gateway.sio_server"]
    assert "9 attachments" in record.__dict__["error"]


async def test_a_text_frame_abandons_a_binary_packet_waiting_for_attachments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []

    async def handle(self: Any, eio_sid: str, data: Any) -> None:
        seen.append((dict(self._binary_packet), data))

    monkeypatch.setattr(socketio.AsyncServer, "_handle_eio_message", handle)
    server = GatewayServer()
    server._binary_packet["e1"] = object()
    await server._handle_eio_message("e1", '27["typing",{}]')
    # The text frame is a packet of its own, not the awaited attachment.
    assert seen == [({}, '27["typing",{}]')]


async def test_a_failing_connect_handler_is_not_mistaken_for_a_bad_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def explode(self: Any, eio_sid: str, data: Any) -> None:
        raise TypeError("a bug in the connect handler")

    monkeypatch.setattr(socketio.AsyncServer, "_handle_eio_message", explode)
    with pytest.raises(TypeError):
        await GatewayServer()._handle_eio_message("e1", '0{"token":"t"}')


# --- SIGTERM: drain, then stop with exit status 0 ----------------------------------------------


class FakeGateway:
    def __init__(self) -> None:
        self.drained = asyncio.Event()
        self.release = asyncio.Event()

    async def drain(self) -> None:
        self.drained.set()
        await self.release.wait()


def draining_server(gateway: FakeGateway) -> DrainingServer:
    return DrainingServer(uvicorn.Config(app=lambda *a: None), gateway)  # type: ignore[arg-type]


async def test_sigterm_drains_before_the_server_stops() -> None:
    gateway = FakeGateway()
    server = draining_server(gateway)
    server.handle_exit(signal.SIGTERM, None)
    await asyncio.wait_for(gateway.drained.wait(), 1)
    assert not server.should_exit, "stopped before the drain finished"
    gateway.release.set()
    assert server._draining is not None
    await asyncio.wait_for(server._draining, 1)
    assert server.should_exit


async def test_a_second_sigterm_stops_at_once() -> None:
    gateway = FakeGateway()
    server = draining_server(gateway)
    server.handle_exit(signal.SIGTERM, None)
    await asyncio.wait_for(gateway.drained.wait(), 1)
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit
    gateway.release.set()
    assert server._draining is not None
    await server._draining


# --- small pieces ---------------------------------------------------------------------------------


def test_error_acks_have_the_contract_shape() -> None:
    assert ApiError(ErrorCode.NOT_FOUND, "No such thing.").ack() == {
        "ok": False,
        "error": {"code": "not_found", "message": "No such thing."},
    }
    assert ApiError(ErrorCode.RATE_LIMITED, "Slow down.", {"retry_after": 2}).ack() == {
        "ok": False,
        "error": {"code": "rate_limited", "message": "Slow down.", "details": {"retry_after": 2}},
    }


def test_each_user_has_one_room() -> None:
    assert user_room("u1") == "u:u1"
    assert user_rooms(["u1", "u2"]) == ["u:u1", "u:u2"]
