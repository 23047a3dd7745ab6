"""Bad input for every client event: an error acknowledgement, nothing stored, nothing broken.

Each case sends one malformed event on a fresh connection, expects an error
ack with the right code, then sends a real message on the same connection.
The module's database must hold exactly the real messages, and the services'
logs no traceback (checked after every test by `no_crash_in_logs`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from gateway_support import Device, RawSocket, assert_error_ack

from chat_testkit.api import ChatApi, User, new_client_msg_id
from chat_testkit.stack import Stack
from chat_testkit.stored import Stored

DeviceFactory = Callable[..., Awaitable[Device]]

MAX_EVENT_BYTES = 64 * 1024  # the gateway's default, which this module keeps
HUGE = "x" * (MAX_EVENT_BYTES + 1)
NO_PAYLOAD = object()  # emit the event with no argument at all
DROP = object()  # leave this field out of the payload


@dataclass(frozen=True)
class Scene:
    alice: User
    bob: User
    own: str  # Alice and Bob's conversation, with one message in it
    foreign: str  # Bob and Carol's: it exists, Alice is not in it
    missing: str  # a well-formed id of no conversation


@pytest_asyncio.fixture(scope="module")
async def scene(api: ChatApi) -> AsyncIterator[Scene]:
    alice, bob, carol = await api.register_many(3)
    own = (await api.direct(alice, bob))["id"]
    foreign = (await api.direct(bob, carol))["id"]
    await api.sent(alice, own, "the first message")
    yield Scene(alice, bob, own, foreign, uuid.uuid4().hex[:24])


Payload = Callable[[Scene], Any]


def send(s: Scene, **changes: Any) -> dict[str, Any]:
    payload = {"conversation_id": s.own, "client_msg_id": new_client_msg_id(), "text": "hi"}
    return {k: v for k, v in {**payload, **changes}.items() if v is not DROP}


def cursor(s: Scene, **changes: Any) -> dict[str, Any]:
    payload = {"conversation_id": s.own, "seq": 1, **changes}
    return {k: v for k, v in payload.items() if v is not DROP}


def typing(s: Scene, **changes: Any) -> dict[str, Any]:
    payload = {"conversation_id": s.own, "is_typing": True, **changes}
    return {k: v for k, v in payload.items() if v is not DROP}


VALID: dict[str, Payload] = {
    "message:send": send,
    "message:delivered": cursor,
    "conversation:read": cursor,
    "typing": typing,
    "sync": lambda s: {"cursors": {s.own: 0}},
    "presence:query": lambda s: {"user_ids": [s.bob.id]},
    "auth:refresh": lambda s: {"token": s.alice.token},
}

# A payload over MAX_EVENT_BYTES in a field each event really has.
HUGE_PAYLOADS: dict[str, Payload] = {
    "message:send": lambda s: send(s, text=HUGE),
    "message:delivered": lambda s: cursor(s, conversation_id=HUGE),
    "conversation:read": lambda s: cursor(s, conversation_id=HUGE),
    "typing": lambda s: typing(s, conversation_id=HUGE),
    "sync": lambda s: {"cursors": {f"{i:024x}": 1 for i in range(3000)}},
    "presence:query": lambda s: {"user_ids": [HUGE]},
    "auth:refresh": lambda s: {"token": HUGE},
}


def _common_cases() -> list[tuple[str, str, Payload, str]]:
    cases: list[tuple[str, str, Payload, str]] = []
    for event, valid in VALID.items():

        def several(s: Scene, valid: Payload = valid) -> Any:
            return (valid(s), valid(s))

        def unknown_field(s: Scene, valid: Payload = valid) -> Any:
            return {**valid(s), "surprise": 1}

        def binary_inside(s: Scene, valid: Payload = valid) -> Any:
            payload = valid(s)
            return {**payload, next(iter(payload)): b"\x00\xff\x00"}

        def as_list(s: Scene, valid: Payload = valid) -> Any:
            return [valid(s)]

        cases += [
            (event, "no payload", lambda s: NO_PAYLOAD, "validation_error"),
            (event, "null payload", lambda s: (None,), "validation_error"),
            (event, "string payload", lambda s: "hello", "validation_error"),
            (event, "number payload", lambda s: 42, "validation_error"),
            (event, "list payload", as_list, "validation_error"),
            (event, "binary payload", lambda s: b"\x00\x01\x02\xff", "validation_error"),
            (event, "several arguments", several, "validation_error"),
            (event, "unknown field", unknown_field, "validation_error"),
            (event, "binary in a field", binary_inside, "validation_error"),
            (event, "over MAX_EVENT_BYTES", HUGE_PAYLOADS[event], "payload_too_large"),
        ]
        if event != "sync":  # every field of sync is optional
            cases.append((event, "empty object", lambda s: {}, "validation_error"))
    return cases


def _specific_cases() -> list[tuple[str, str, Payload, str]]:
    v, nf = "validation_error", "not_found"
    cases: list[tuple[str, str, Payload, str]] = [
        ("message:send", "no conversation_id", lambda s: send(s, conversation_id=DROP), v),
        ("message:send", "no client_msg_id", lambda s: send(s, client_msg_id=DROP), v),
        ("message:send", "conversation_id a number", lambda s: send(s, conversation_id=7), v),
        ("message:send", "conversation_id empty", lambda s: send(s, conversation_id=""), v),
        (
            "message:send",
            "conversation_id too long",
            lambda s: send(s, conversation_id="c" * 65),
            v,
        ),
        ("message:send", "client_msg_id a number", lambda s: send(s, client_msg_id=1), v),
        ("message:send", "client_msg_id empty", lambda s: send(s, client_msg_id=""), v),
        ("message:send", "client_msg_id too long", lambda s: send(s, client_msg_id="m" * 65), v),
        ("message:send", "text a number", lambda s: send(s, text=5), v),
        ("message:send", "text an object", lambda s: send(s, text={"t": "x"}), v),
        ("message:send", "text empty", lambda s: send(s, text=""), v),
        ("message:send", "no text, no attachment", lambda s: send(s, text=DROP), v),
        ("message:send", "text null", lambda s: send(s, text=None), v),
        ("message:send", "text over 4000 chars", lambda s: send(s, text="y" * 4001), v),
        ("message:send", "attachment_ids a string", lambda s: send(s, attachment_ids="a"), v),
        ("message:send", "attachment_ids numbers", lambda s: send(s, attachment_ids=[1]), v),
        ("message:send", "unknown attachment", lambda s: send(s, attachment_ids=[s.missing]), nf),
        ("message:send", "reply_to_id a number", lambda s: send(s, reply_to_id=3), v),
        ("message:send", "reply_to_id unknown", lambda s: send(s, reply_to_id=s.missing), v),
        ("message:send", "not a member", lambda s: send(s, conversation_id=s.foreign), nf),
        ("message:send", "no such conversation", lambda s: send(s, conversation_id=s.missing), nf),
        ("message:send", "malformed conversation id", lambda s: send(s, conversation_id="zz"), nf),
        ("typing", "no is_typing", lambda s: typing(s, is_typing=DROP), v),
        ("typing", "no conversation_id", lambda s: typing(s, conversation_id=DROP), v),
        ("typing", "is_typing a string", lambda s: typing(s, is_typing="yes"), v),
        ("typing", "is_typing a number", lambda s: typing(s, is_typing=1), v),
        ("typing", "is_typing null", lambda s: typing(s, is_typing=None), v),
        ("typing", "conversation_id a list", lambda s: typing(s, conversation_id=[s.own]), v),
        ("typing", "not a member", lambda s: typing(s, conversation_id=s.foreign), nf),
        ("typing", "no such conversation", lambda s: typing(s, conversation_id=s.missing), nf),
        ("sync", "cursors a list", lambda s: {"cursors": [s.own]}, v),
        ("sync", "cursor a string", lambda s: {"cursors": {s.own: "1"}}, v),
        ("sync", "cursor negative", lambda s: {"cursors": {s.own: -1}}, v),
        ("sync", "cursor a float", lambda s: {"cursors": {s.own: 1.5}}, v),
        ("sync", "cursor true", lambda s: {"cursors": {s.own: True}}, v),
        ("sync", "cursor key too long", lambda s: {"cursors": {"k" * 65: 1}}, v),
        ("sync", "1001 cursors", lambda s: {"cursors": {f"{i:x}": 1 for i in range(1001)}}, v),
        ("sync", "since not a time", lambda s: {"since": "yesterday"}, v),
        ("sync", "since a list", lambda s: {"since": [2024]}, v),
        ("sync", "limit zero", lambda s: {"limit": 0}, v),
        ("sync", "limit 201", lambda s: {"limit": 201}, v),
        ("sync", "limit a string", lambda s: {"limit": "10"}, v),
        ("presence:query", "no user_ids", lambda s: {}, v),
        ("presence:query", "user_ids a string", lambda s: {"user_ids": s.bob.id}, v),
        ("presence:query", "user_ids empty", lambda s: {"user_ids": []}, v),
        ("presence:query", "user_ids numbers", lambda s: {"user_ids": [1, 2]}, v),
        (
            "presence:query",
            "201 user_ids",
            lambda s: {"user_ids": [f"u{i}" for i in range(201)]},
            v,
        ),
        ("presence:query", "user id too long", lambda s: {"user_ids": ["u" * 65]}, v),
        ("auth:refresh", "token a number", lambda s: {"token": 1}, v),
        ("auth:refresh", "token empty", lambda s: {"token": ""}, v),
        ("auth:refresh", "token null", lambda s: {"token": None}, v),
        ("auth:refresh", "token garbage", lambda s: {"token": "a.b.c"}, "unauthorized"),
    ]
    for event in ("message:delivered", "conversation:read"):
        cases += [
            (event, "no seq", lambda s: cursor(s, seq=DROP), v),
            (event, "no conversation_id", lambda s: cursor(s, conversation_id=DROP), v),
            (event, "seq a string", lambda s: cursor(s, seq="1"), v),
            (event, "seq a float", lambda s: cursor(s, seq=1.5), v),
            (event, "seq true", lambda s: cursor(s, seq=True), v),
            (event, "seq null", lambda s: cursor(s, seq=None), v),
            (event, "seq negative", lambda s: cursor(s, seq=-1), v),
            (event, "seq beyond last_seq", lambda s: cursor(s, seq=10**9), v),
            (event, "seq huge", lambda s: cursor(s, seq=2**70), v),
            (event, "conversation_id a number", lambda s: cursor(s, conversation_id=9), v),
            (event, "not a member", lambda s: cursor(s, conversation_id=s.foreign, seq=0), nf),
            (event, "no such conversation", lambda s: cursor(s, conversation_id=s.missing), nf),
        ]
    return cases


CASES = _common_cases() + _specific_cases()


async def _emit(device: Device, event: str, payload: Any) -> Any:
    if payload is NO_PAYLOAD:
        return await device.call(event)
    return await device.call(event, payload)


@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [pytest.param(e, p, c, id=f"{e} {name}") for e, name, p, c in CASES],
)
async def test_bad_payload_gets_an_error_ack_and_the_connection_keeps_working(
    stack: Stack,
    scene: Scene,
    devices: DeviceFactory,
    stored: Stored,
    event: str,
    payload: Payload,
    code: str,
) -> None:
    device = await devices(scene.alice, stack.gateways[0])
    before = stored.messages()

    error = assert_error_ack(await _emit(device, event, payload(scene)), code)
    if code == "payload_too_large":
        assert error["details"] == {"max_bytes": MAX_EVENT_BYTES}, error
    if code == "validation_error" and "details" in error:
        assert isinstance(error["details"], dict), error

    assert device.connected
    message = await device.send(scene.own, f"after a bad {event}")
    assert stored.messages() == before + 1, "the bad event stored something"
    assert stored.messages(client_msg_id=message["client_msg_id"]) == 1


@pytest.mark.parametrize(
    ("event", "args"),
    [
        pytest.param("nope", ({"a": 1},), id="unknown name"),
        pytest.param("message:sendx", ({"conversation_id": "x"},), id="near miss"),
        pytest.param("message", ("hello",), id="plain message event"),
        pytest.param("MESSAGE:SEND", ({},), id="wrong case"),
        pytest.param("e" * 5000, ({},), id="very long name"),
        pytest.param("nope", (), id="no payload"),
        pytest.param("nope", (b"\x00\x01",), id="binary payload"),
        pytest.param("nope", ({"a": 1}, [2], "three"), id="several arguments"),
        pytest.param("connect", ({"token": "x"},), id="reserved connect"),
        pytest.param("disconnect", ("bye",), id="reserved disconnect"),
        pytest.param("connect_error", ({},), id="reserved connect_error"),
        pytest.param("*", ({},), id="catch-all name"),
    ],
)
async def test_unknown_events_get_not_found_and_change_nothing(
    stack: Stack, scene: Scene, devices: DeviceFactory, stored: Stored, event: str, args: Any
) -> None:
    device = await devices(scene.alice, stack.gateways[1])
    before = stored.messages()
    ack = await device.call(event, args if len(args) != 1 else args[0])
    assert_error_ack(ack, "not_found")

    # Still the same, fully working connection: it sends, and it is still online.
    assert device.connected
    await device.send(scene.own, f"after an unknown {event[:20]}")
    assert stored.messages() == before + 1
    presence = await device.ok("presence:query", {"user_ids": [scene.alice.id]})
    assert presence["presence"][scene.alice.id]["online"] is True


@pytest.mark.parametrize(
    ("frame", "answered"),
    [
        # Packets with an acknowledgement id but no event name: answered as unknown events.
        pytest.param("427[]", True, id="empty event list"),
        pytest.param("427", True, id="event without data"),
        pytest.param("427{}", True, id="event data an object"),
        pytest.param('427"typing"', True, id="event data a string"),
        pytest.param("427[1]", True, id="event name a number"),
        pytest.param('427[null,{"a":1}]', True, id="event name null"),
        pytest.param('427[{"a":1},2]', True, id="event name an object"),
        pytest.param('427[["typing"],{}]', True, id="event name a list"),
        # Frames that do not decode, or that a server never answers: nothing may break.
        pytest.param('427["typing",{bad', False, id="broken JSON"),
        pytest.param(
            '427["typing",' + "[" * 30000 + "]" * 30000 + "]", False, id="nested 30000 deep"
        ),
        pytest.param('42x["typing"]', False, id="garbage after the type"),
        pytest.param("49", False, id="unknown packet type"),
        pytest.param('44{"message":"x"}', False, id="connect_error from a client"),
        pytest.param('43999["x"]', False, id="ack nobody asked for"),
        pytest.param('42/other,7["typing",{}]', False, id="namespace not connected"),
        pytest.param(b"\x01\x02", False, id="binary frame out of the blue"),
        pytest.param(
            ('451-["typing",{"_placeholder":true,"num":7}]', b"\x00"),
            False,
            id="binary placeholder out of range",
        ),
        pytest.param(
            ('452-["typing",{"_placeholder":true,"num":"z"}]', b"\x00", b"\x01"),
            False,
            id="binary placeholder not a number",
        ),
        # A binary packet whose attachments never come must not swallow the frames after it.
        pytest.param(
            '451-["typing",{"_placeholder":true,"num":0}]', False, id="attachment never sent"
        ),
        pytest.param(
            ('4599-["typing",{"_placeholder":true,"num":0}]', b"\x00", b"\x01"),
            False,
            id="99 attachments announced",
        ),
    ],
)
async def test_frames_no_client_would_send_cost_nothing(
    stack: Stack, scene: Scene, stored: Stored, frame: Any, answered: bool
) -> None:
    raw = RawSocket()
    try:
        await raw.connect(stack.gateways[0].url, scene.alice.token)
        for part in frame if isinstance(frame, tuple) else (frame,):
            await raw.send(part)
        if answered:
            assert_error_ack(await raw.ack(7), "not_found")
        else:
            # Events for Alice may come (her earlier messages); an answer may not.
            frames = await raw.frames_for(0.3)
            assert [f for f in frames if not f.startswith("42[")] == [], frames

        # The same socket still works: a real send is acknowledged and stored.
        before = stored.messages()
        client_msg_id = new_client_msg_id()
        payload = {"conversation_id": scene.own, "client_msg_id": client_msg_id, "text": "raw"}
        await raw.send("428" + json.dumps(["message:send", payload]))
        ack = await raw.ack(8)
        assert ack["ok"] is True, ack
        assert ack["message"]["client_msg_id"] == client_msg_id, ack
        assert stored.messages() == before + 1
    finally:
        await raw.close()
