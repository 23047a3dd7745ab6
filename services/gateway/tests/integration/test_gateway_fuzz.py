"""Generated payloads for every client event, and generated raw frames, against real gateways.

Whatever a client sends, each event is answered (never `internal`), no service
logs a traceback (`no_crash_in_logs`), and the connection keeps working. The
payloads mix plausible values (the scene's real ids, seqs near the bounds,
well-formed times) with arbitrary JSON in every field, so that validation,
the message service's handling and the answers' encoding are all reached.
Examples are bounded per event so that the module runs in seconds.
"""

from __future__ import annotations

import json
import os
import string
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from gateway_fakes import CLIENT_EVENTS
from gateway_support import Device, RawSocket, assert_error_ack
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chat_contracts.fields import MAX_SEQ
from chat_testkit.api import ChatApi, User, new_client_msg_id
from chat_testkit.stack import Stack

FUZZ = settings(
    # Bounded so that `make test` stays quick; raise it for a deeper search on one's own machine.
    max_examples=int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "40")),
    deadline=None,
    database=None,
    # One connection serves every example of a test: that it survives them is the point.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Scene:
    alice: User
    bob: User
    own: str  # Alice and Bob's direct conversation
    group: str  # a group of Alice's
    foreign: str  # Bob and Carol's: Alice is not in it
    missing: str  # a well-formed id of no conversation


@pytest_asyncio.fixture(scope="module")
async def scene(api: ChatApi) -> AsyncIterator[Scene]:
    alice, bob, carol = await api.register_many(3)
    own = (await api.direct(alice, bob))["id"]
    group = (await api.group(alice, [bob, carol]))["id"]
    foreign = (await api.direct(bob, carol))["id"]
    await api.sent(alice, own, "the first message")
    yield Scene(alice, bob, own, group, foreign, uuid.uuid4().hex[:24])


# --- strategies -------------------------------------------------------------------------------

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities included: the JSON a client library sends allows them
    | st.text(max_size=40)
    | st.binary(max_size=16)
)
ANY_JSON = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
ID_CHARS = string.ascii_letters + string.digits + "-_.$:/%\x00é😀"


@dataclass(frozen=True)
class Field:
    """A field's values within the contract, and values near or past its edges."""

    valid: st.SearchStrategy[Any]
    edge: st.SearchStrategy[Any]


SEQ = Field(
    st.one_of(st.integers(0, 5), st.sampled_from([2**31, 2**53, 2**53 + 1, MAX_SEQ - 1, MAX_SEQ])),
    st.one_of(
        st.sampled_from([-1, MAX_SEQ + 1, 2**64, 2**70, True, 1.0, "1"]),
        st.integers(min_value=-(2**70), max_value=2**70),
    ),
)
EDGE_IDS = st.one_of(st.just(""), st.text(ID_CHARS, max_size=70))


def ids(scene: Scene) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [scene.own, scene.group, scene.foreign, scene.missing, scene.alice.id, scene.bob.id]
    )


def weighted(choices: list[tuple[int, st.SearchStrategy[Any]]]) -> st.SearchStrategy[Any]:
    # `one_of` does not weigh its branches evenly in practice; an index drawn uniformly does.
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(range(len(pool))).flatmap(lambda i: pool[i])


def payload(required: dict[str, Field], optional: dict[str, Field]) -> st.SearchStrategy[Any]:
    """Mostly payloads within the contract (so that they reach the handlers and the message
    service), the rest with a value past an edge or anything at all in a field, a field
    missing, a field too many, or not an object at all."""

    def noisy_field(f: Field) -> st.SearchStrategy[Any]:
        return weighted([(2, f.valid), (2, f.edge), (1, ANY_JSON)])

    valid = st.fixed_dictionaries(
        {k: f.valid for k, f in required.items()},
        optional={k: f.valid for k, f in optional.items()},
    )
    noisy = st.fixed_dictionaries(
        {k: noisy_field(f) for k, f in required.items()},
        optional={k: noisy_field(f) for k, f in optional.items()},
    )
    surprise = st.tuples(valid, st.text(max_size=12), ANY_JSON).map(
        lambda t: {**t[0], t[1] or "surprise": t[2]}
    )
    thinned = valid.flatmap(
        lambda d: (
            st.sets(st.sampled_from(sorted(d)), min_size=1, max_size=2).map(
                lambda drop: {k: v for k, v in d.items() if k not in drop}
            )
            if d
            else st.just(d)
        )
    )
    return weighted([(5, valid), (3, noisy), (1, surprise), (1, thinned), (1, ANY_JSON)])


def strategies(scene: Scene) -> dict[str, st.SearchStrategy[Any]]:
    conversation = Field(ids(scene), EDGE_IDS)
    client_msg_id = Field(st.uuids().map(str), EDGE_IDS)
    cursor = payload({"conversation_id": conversation, "seq": SEQ}, {})
    text = Field(
        st.text(min_size=1, max_size=200),
        st.one_of(st.just(""), st.text(min_size=3990, max_size=4010)),
    )
    send = payload(
        # Text is optional, but a send without it or an attachment fails on its merits.
        {"conversation_id": conversation, "client_msg_id": client_msg_id, "text": text},
        {
            # Real ids of other things make a send fail on its merits: mostly none.
            "attachment_ids": Field(
                st.just([]), st.lists(st.one_of(ids(scene), EDGE_IDS), max_size=60)
            ),
            "reply_to_id": Field(st.none(), st.one_of(ids(scene), EDGE_IDS)),
        },
    )
    times = st.datetimes(timezones=st.just(None) | st.timezones()).map(lambda t: t.isoformat())
    sync = payload(
        {},
        {
            "cursors": Field(
                st.dictionaries(ids(scene), SEQ.valid, max_size=6),
                st.dictionaries(EDGE_IDS, SEQ.edge, max_size=6),
            ),
            "since": Field(times, st.text(max_size=30)),
            "limit": Field(st.integers(1, 200), st.sampled_from([0, -1, 201, 2**64, 1.5])),
        },
    )
    presence = payload(
        {
            "user_ids": Field(
                st.lists(ids(scene), min_size=1, max_size=20),
                st.lists(EDGE_IDS, min_size=0, max_size=210),
            )
        },
        {},
    )
    # The shape of a JWT, with parts that are not.
    jwt_like = st.lists(
        st.text(string.ascii_letters + "-_=", max_size=40), min_size=3, max_size=3
    ).map(".".join)
    refresh = payload(
        {
            "token": Field(
                st.sampled_from([scene.alice.token, scene.bob.token]),
                st.one_of(jwt_like, st.text(max_size=100), st.text(min_size=4090, max_size=4100)),
            )
        },
        {},
    )
    typing = payload(
        {
            "conversation_id": conversation,
            "is_typing": Field(st.booleans(), st.sampled_from([0, 1, "true", None])),
        },
        {},
    )
    return {
        "message:send": send,
        "message:delivered": cursor,
        "conversation:read": cursor,
        "typing": typing,
        "sync": sync,
        "presence:query": presence,
        "auth:refresh": refresh,
    }


# --- the checks -------------------------------------------------------------------------------


def assert_answered(name: str, payload: Any, ack: Any) -> None:
    """A contract answer: `{ok: true, ...}`, or a contract error that is not `internal`."""
    assert isinstance(ack, dict), (name, payload, ack)
    if ack.get("ok") is True:
        event("ok")
        return
    error = assert_error_ack(ack)
    # Shown by --hypothesis-show-statistics: how far in the generated payloads got.
    event(error["code"])
    assert error["code"] != "internal", (name, payload, ack)


async def assert_usable(device: Device, scene: Scene) -> None:
    assert device.connected, device.disconnects
    ack = await device.ok("presence:query", {"user_ids": [scene.alice.id]})
    assert ack["presence"][scene.alice.id]["online"] is True


@pytest_asyncio.fixture(scope="module")
async def connected(
    stack: Stack, scene: Scene
) -> AsyncIterator[Callable[[str], Awaitable[Device]]]:
    """Alice's device for a test, connected once and kept across its examples: that one
    connection survives all of them is the point (a test connects it on its first example)."""
    made: dict[str, Device] = {}

    async def device(name: str) -> Device:
        if name not in made:
            gateway = stack.gateways[len(made) % len(stack.gateways)]
            made[name] = await Device(scene.alice, f"alice:{name}").connect(gateway.url)
        return made[name]

    yield device
    for each in made.values():
        await each.close()


EVENTS = CLIENT_EVENTS


@pytest.mark.parametrize("event", EVENTS)
@FUZZ
@given(data=st.data())
async def test_generated_payloads_are_answered_and_break_nothing(
    scene: Scene, connected: Callable[[str], Awaitable[Device]], event: str, data: st.DataObject
) -> None:
    device = await connected(event)
    sent = data.draw(strategies(scene)[event], label="payload")
    # Several arguments, or none, now and then.
    arity = data.draw(st.sampled_from([1] * 8 + [0, 2]), label="arguments")
    args: Any = sent if arity == 1 else (sent, sent)
    ack = await (device.call(event) if arity == 0 else device.call(event, args))
    assert_answered(event, sent, ack)
    await assert_usable(device, scene)


@pytest.mark.parametrize("event", EVENTS)
async def test_after_the_generated_payloads_the_connection_still_sends(
    scene: Scene, connected: Callable[[str], Awaitable[Device]], event: str
) -> None:
    device = await connected(event)
    await device.send(scene.own, f"still here after fuzzing {event}")


KNOWN = {*EVENTS, "connect", "disconnect", "connect_error"}


@FUZZ
@given(name=st.text(max_size=80).filter(lambda n: n not in KNOWN), payload=ANY_JSON)
async def test_generated_unknown_events_get_not_found(
    scene: Scene, connected: Callable[[str], Awaitable[Device]], name: str, payload: Any
) -> None:
    device = await connected("unknown")
    assert_error_ack(await device.call(name, payload), "not_found")
    await assert_usable(device, scene)


# Socket.IO packet types a client may send (CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR,
# BINARY_EVENT, BINARY_ACK) and some that do not exist, each behind an Engine.IO MESSAGE.
PACKET_PREFIXES = ["40", "41", "42", "43", "44", "45", "46", "47", "4", "49", "4-"]
FRAME_BODIES = st.one_of(
    ANY_JSON.map(lambda v: json.dumps(v, default=repr)),
    st.text(max_size=60),
    st.tuples(st.text(max_size=20), ANY_JSON).map(lambda t: json.dumps(list(t), default=repr)),
)


@st.composite
def frames(draw: st.DrawFn) -> str | bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=40))
    prefix = draw(st.sampled_from(PACKET_PREFIXES))
    attachments = draw(st.sampled_from(["", "1-", "2-", "x-", "99999999999999999999-"]))
    namespace = draw(st.sampled_from(["", "/,", "/other,", "/,,"]))
    ack_id = draw(st.sampled_from(["", "7", "0", "-1", "99999999999999999999999"]))
    return prefix + attachments + namespace + ack_id + draw(FRAME_BODIES)


async def answers_until(
    raw: RawSocket, ack_id: int, timeout: float = 10.0
) -> tuple[list[str], Any]:
    """The frames received before the acknowledgement `ack_id`, and that acknowledgement."""
    prefix = f"43{ack_id}["
    before: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = await raw.frame(max(0.01, deadline - time.monotonic()))
        if frame.startswith(prefix):
            return before, json.loads(frame[len(prefix) - 1 :])[0]
        before.append(frame)


@pytest_asyncio.fixture(scope="module")
async def raw_socket(
    stack: Stack, scene: Scene
) -> AsyncIterator[Callable[[], Awaitable[RawSocket]]]:
    """Alice's hand-spoken socket, kept across examples; a new one once a frame closed it."""
    made: list[RawSocket] = []

    async def current() -> RawSocket:
        if not made or not made[-1].open:
            made.append(await RawSocket().connect(stack.gateways[0].url, scene.alice.token))
        return made[-1]

    yield current
    for raw in made:
        await raw.close()


PROBES = iter(range(100, 10**9))


@FUZZ
@given(frame=frames())
async def test_generated_raw_frames_break_nothing(
    scene: Scene, raw_socket: Callable[[], Awaitable[RawSocket]], frame: str | bytes
) -> None:
    """Frames no client library would send: the socket still answers afterwards.

    A disconnect packet (`41`) ends the socket as asked, and the probe goes on a new one.
    """
    raw = await raw_socket()
    await raw.send(frame)
    if isinstance(frame, str) and frame.startswith("41"):
        await raw.close()
        raw = await raw_socket()
    # The answer to a probe proves the socket alive; whatever came before it (the frame's
    # own answer, if it asked for one) must not be `internal`.
    probe = next(PROBES)
    payload = {"user_ids": [scene.alice.id]}
    await raw.send(f"42{probe}" + json.dumps(["presence:query", payload]))
    try:
        before, ack = await answers_until(raw, probe)
    except TimeoutError:
        raise AssertionError(f"no answer after the frame {frame!r}") from None
    assert ack["ok"] is True, (frame, ack)
    assert not [f for f in before if '"internal"' in f], (frame, before)


async def test_after_the_generated_frames_the_socket_still_sends(
    scene: Scene, raw_socket: Callable[[], Awaitable[RawSocket]]
) -> None:
    raw = await raw_socket()
    client_msg_id = new_client_msg_id()
    payload = {"conversation_id": scene.own, "client_msg_id": client_msg_id, "text": "raw"}
    await raw.send("428" + json.dumps(["message:send", payload]))
    _, ack = await answers_until(raw, 8)
    assert ack["ok"] is True, ack
