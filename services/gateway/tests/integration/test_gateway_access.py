"""Who may connect and for how long, and how fast they may send."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from gateway_support import (
    Device,
    assert_error_ack,
    refused,
    signing_key,
    token_signed_by,
    unsigned_token,
)

from chat_platform.jwt import public_jwk
from chat_testkit.api import ChatApi, User, new_client_msg_id
from chat_testkit.stack import Stack
from chat_testkit.stored import Stored
from chat_testkit.tokens import access_claims, encode, hs256

DeviceFactory = Callable[..., Awaitable[Device]]


def bad_auth(kind: str, user: User, key: Ed25519PrivateKey) -> Any:
    """The `auth` object of a connection attempt that must be refused."""
    kid = public_jwk(key.public_key())["kid"]
    public_raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    header = {"alg": "EdDSA", "typ": "JWT", "kid": kid}
    tokens: dict[str, Any] = {
        "no auth": None,
        "empty auth": {},
        "auth not an object": "a-token",
        "null token": {"token": None},
        "token not a string": {"token": 12345},
        "empty token": {"token": ""},
        "garbage token": {"token": "not.a.jwt"},
        "oversized token": {"token": "x" * 5000},
        "expired": {"token": token_signed_by(key, user.id, ttl=-120)},
        "forged signature, real kid": {
            "token": token_signed_by(Ed25519PrivateKey.generate(), user.id, kid=kid)
        },
        "unknown key": {"token": token_signed_by(Ed25519PrivateKey.generate(), user.id)},
        "alg none": {"token": unsigned_token(user.id, kid)},
        "HS256 with the public key as secret": {
            "token": encode(
                {"alg": "HS256", "typ": "JWT", "kid": kid},
                access_claims(user.id),
                hs256(public_raw),
            )
        },
        "wrong audience": {
            "token": encode(header, access_claims(user.id, audience="other"), key.sign)
        },
        "wrong issuer": {"token": encode(header, access_claims(user.id, issuer="evil"), key.sign)},
        "no subject": {
            "token": encode(
                header,
                {k: v for k, v in access_claims(user.id).items() if k != "sub"},
                key.sign,
            )
        },
    }
    return tokens[kind]


BAD_AUTH_KINDS = [
    "no auth",
    "empty auth",
    "auth not an object",
    "null token",
    "token not a string",
    "empty token",
    "garbage token",
    "oversized token",
    "expired",
    "forged signature, real kid",
    "unknown key",
    "alg none",
    "HS256 with the public key as secret",
    "wrong audience",
    "wrong issuer",
    "no subject",
]


@pytest.mark.parametrize("kind", BAD_AUTH_KINDS)
async def test_a_connection_without_a_valid_token_is_refused(
    api: ChatApi, stack: Stack, kind: str
) -> None:
    user = await api.register()
    key = signing_key(stack.env["JWT_PRIVATE_KEY_FILE"])
    errors = await refused(stack.gateways[0].url, bad_auth(kind, user, key))
    assert len(errors) == 1, errors
    # What socket.io-client shows as `err.message` and `err.data`.
    assert errors[0]["message"] == "unauthorized", errors
    data = errors[0]["data"]
    assert set(data) == {"error"}, data
    assert data["error"]["code"] == "unauthorized", data
    assert isinstance(data["error"]["message"], str), data
    assert data["error"]["message"], data


async def test_a_token_made_with_the_real_key_is_accepted(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    """The control for the refusals above: the same hand-made token, validly signed."""
    user = await api.register()
    key = signing_key(stack.env["JWT_PRIVATE_KEY_FILE"])
    device = Device(user, "hand-made token")
    try:
        await device.connect(stack.gateways[0].url, token_signed_by(key, user.id))
        assert (await device.ok("sync", {"cursors": {}}))["conversations"] == []
    finally:
        await device.close()


async def test_auth_refresh_takes_the_same_users_tokens_only(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    alice, mallory = await api.register_many(2)
    conversation = await api.direct(alice, mallory)
    device = await devices(alice, stack.gateways[0])
    key = signing_key(stack.env["JWT_PRIVATE_KEY_FILE"])

    assert await device.call("auth:refresh", {"token": await api.login(alice)}) == {"ok": True}
    assert_error_ack(
        await device.call("auth:refresh", {"token": await api.login(mallory)}), "forbidden"
    )
    assert_error_ack(await device.call("auth:refresh", {"token": "garbage"}), "unauthorized")
    expired = token_signed_by(key, alice.id, ttl=-120)
    assert_error_ack(await device.call("auth:refresh", {"token": expired}), "unauthorized")
    forged = token_signed_by(
        Ed25519PrivateKey.generate(), alice.id, kid=public_jwk(key.public_key())["kid"]
    )
    assert_error_ack(await device.call("auth:refresh", {"token": forged}), "unauthorized")

    # Still Alice's connection, still usable.
    message = await device.send(conversation["id"], "still here")
    assert message["sender_id"] == alice.id


@pytest.mark.slow
async def test_a_connection_whose_token_expires_without_refresh_is_closed(
    api: ChatApi, stack: Stack
) -> None:
    # A second auth instance with the same key and database, issuing 3-second tokens.
    short_auth = stack.start("auth", ACCESS_TOKEN_TTL_SECONDS="3")
    user = await api.register()
    grace = float(stack.env_of("gateway")["TOKEN_GRACE_SECONDS"])
    check_interval = 5.0  # how often a gateway looks for expired tokens

    token = await api.login(user, short_auth.url)
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert expires_at - time.time() <= 3.5
    lapsing = Device(user, "never refreshes")
    refreshing = Device(user, "refreshes")
    try:
        await lapsing.connect(stack.gateways[0].url, token)
        await refreshing.connect(stack.gateways[1].url, await api.login(user, short_auth.url))
        await refreshing.ok("auth:refresh", {"token": await api.login(user)})

        await lapsing.wait_disconnected(timeout=3 + grace + check_interval + 5)
        closed_at = time.time()
        assert closed_at >= expires_at + grace - 0.5, "closed before the grace period ran out"
        assert lapsing.disconnects, "the server did not close the connection"

        # The refreshed connection outlives the token it connected with.
        await asyncio.sleep(max(0.0, expires_at + grace + check_interval + 0.5 - time.time()))
        assert refreshing.connected
        await refreshing.ok("presence:query", {"user_ids": [user.id]})
    finally:
        await lapsing.close()
        await refreshing.close()


async def test_sends_beyond_the_rate_are_refused_and_the_connection_stays_usable(
    api: ChatApi, stack: Stack, devices: DeviceFactory, stored: Stored
) -> None:
    limited = stack.start("gateway", RATE_SEND="1/2")
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    device = await devices(alice, limited)

    payloads = [
        {"conversation_id": cid, "client_msg_id": new_client_msg_id(), "text": f"quick {i}"}
        for i in range(3)
    ]
    acks = [await device.call("message:send", p) for p in payloads]
    assert [a["ok"] for a in acks[:2]] == [True, True], acks
    error = assert_error_ack(acks[2], "rate_limited")
    retry_after = error["details"]["retry_after"]
    assert isinstance(retry_after, int), error
    assert 1 <= retry_after <= 2, error
    assert stored.messages(client_msg_id=payloads[2]["client_msg_id"]) == 0

    # Other events have buckets of their own; the connection is fine.
    assert device.connected
    await device.ok("presence:query", {"user_ids": [bob.id]})
    # After the advertised wait, the refused message goes through.
    await asyncio.sleep(retry_after)
    retried = await device.ok("message:send", payloads[2])
    assert retried["message"]["text"] == "quick 2"
    assert [m["text"] for m in await api.all_messages(alice, cid)] == [
        "quick 0",
        "quick 1",
        "quick 2",
    ]


# Every budgeted action of the socket, with the setting that sizes it.
RATE_SETTINGS = {
    "message:send": "RATE_SEND",
    "message:delivered": "RATE_OTHER",
    "conversation:read": "RATE_OTHER",
    "typing": "RATE_TYPING",
    "sync": "RATE_SYNC",
    "presence:query": "RATE_PRESENCE_QUERY",
    "auth:refresh": "RATE_AUTH_REFRESH",
}
# A burst of its own per setting, so that an event spending another's budget shows.
BURSTS = {
    "RATE_SEND": 3,
    "RATE_OTHER": 2,
    "RATE_TYPING": 4,
    "RATE_SYNC": 5,
    "RATE_PRESENCE_QUERY": 6,
    "RATE_AUTH_REFRESH": 7,
}


def small_budgets() -> dict[str, str]:
    """Every budget at its BURSTS, refilled at one token per 2 s."""
    env = {}
    for setting, burst in BURSTS.items():
        env[setting] = f"0.5/{burst}"
    return env


async def test_a_burst_of_any_event_beyond_its_budget_is_told_when_to_retry(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    limited = stack.start("gateway", **small_budgets())
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    await api.sent(alice, cid, "one to be delivered")
    device = await devices(alice, limited)

    def payload(event: str) -> dict[str, Any]:
        return {
            "message:send": {
                "conversation_id": cid,
                "client_msg_id": new_client_msg_id(),
                "text": "quick",
            },
            "message:delivered": {"conversation_id": cid, "seq": 1},
            "conversation:read": {"conversation_id": cid, "seq": 1},
            "typing": {"conversation_id": cid, "is_typing": True},
            "sync": {"cursors": {cid: 0}},
            "presence:query": {"user_ids": [bob.id]},
            "auth:refresh": {"token": alice.token},
        }[event]

    for event, setting in RATE_SETTINGS.items():
        burst = BURSTS[setting]
        acks = [await device.call(event, payload(event)) for _ in range(burst + 1)]
        assert [a["ok"] for a in acks[:burst]] == [True] * burst, (event, acks)
        error = assert_error_ack(acks[burst], "rate_limited")
        retry_after = error["details"]["retry_after"]
        assert isinstance(retry_after, int), (event, error)
        assert 1 <= retry_after <= 2, (event, error)
    # Each event spent a bucket of its own: the last one was refused like the first.
    assert device.connected


async def test_rest_and_the_socket_spend_one_send_budget(
    api: ChatApi, stack: Stack, devices: DeviceFactory, stored: Stored
) -> None:
    budgets = small_budgets()
    gateway = stack.start("gateway", **budgets)
    message = stack.start("message", **budgets)
    rest = ChatApi(api.http, auth_url=api.auth_url, message_url=message.url)
    alice, bob, carol = await api.register_many(3)
    cid = (await api.direct(alice, bob))["id"]
    other = (await api.direct(carol, bob))["id"]

    # Alice spends her sends over REST: the socket has none left for her.
    for i in range(BURSTS["RATE_SEND"]):
        await rest.sent(alice, cid, f"rest {i}")
    a1 = await devices(alice, gateway)
    send = {"conversation_id": cid, "client_msg_id": new_client_msg_id(), "text": "socket"}
    assert_error_ack(await a1.call("message:send", send), "rate_limited")

    # Carol spends hers over the socket: REST has none left for her.
    c1 = await devices(carol, gateway)
    for i in range(BURSTS["RATE_SEND"]):
        await c1.send(other, f"socket {i}")
    response = await rest.send(carol, other, "rest")
    assert response.status_code == 429, response.text
    assert response.json()["error"]["details"]["retry_after"] >= 1
    assert stored.messages(conversation_id=cid) == BURSTS["RATE_SEND"]
    assert stored.messages(conversation_id=other) == BURSTS["RATE_SEND"]


async def test_sends_beyond_the_in_flight_bound_are_shed_at_once(
    api: ChatApi, stack: Stack, devices: DeviceFactory, stored: Stored
) -> None:
    busy = stack.start("gateway", MAX_SENDS_IN_FLIGHT="1")
    users = await api.register_many(8)
    owner, *others = users
    cid = (await api.group(owner, others))["id"]
    phones = await asyncio.gather(*(devices(u, busy) for u in users))
    payloads = [
        {"conversation_id": cid, "client_msg_id": new_client_msg_id(), "text": f"burst {i}"}
        for i in range(len(users))
    ]
    # Eight users at once through one instance that lets one send wait at a time.
    acks = await asyncio.gather(
        *(phone.call("message:send", p) for phone, p in zip(phones, payloads, strict=True))
    )
    accepted = [p for p, a in zip(payloads, acks, strict=True) if a.get("ok")]
    shed = [p for p, a in zip(payloads, acks, strict=True) if not a.get("ok")]
    assert accepted, acks
    assert shed, acks
    for ack in acks:
        if not ack.get("ok"):
            error = assert_error_ack(ack, "unavailable")
            assert error["details"]["retry_after"] == 1, error
    for payload in shed:
        assert stored.messages(client_msg_id=payload["client_msg_id"]) == 0
    # Nothing was wrong with them: once the instance has room they go through.
    for phone, payload in zip(phones, payloads, strict=True):
        if payload in shed:
            assert (await phone.ok("message:send", payload))["message"]["text"] == payload["text"]
    history = await api.all_messages(owner, cid)
    assert sorted(m["text"] for m in history) == sorted(p["text"] for p in payloads)


async def test_a_user_unknown_to_the_message_service_gets_errors_not_crashes(
    stack: Stack, devices: DeviceFactory
) -> None:
    """A validly signed token for a user id nobody registered: connected, but owns nothing."""
    key = signing_key(stack.env["JWT_PRIVATE_KEY_FILE"])
    ghost_id = uuid.uuid4().hex[:24]
    ghost = User(ghost_id, "ghost", token_signed_by(key, ghost_id))
    device = await devices(ghost, stack.gateways[1])
    assert (await device.ok("sync", {"cursors": {}}))["conversations"] == []
    error = await device.error(
        "message:send",
        {"conversation_id": uuid.uuid4().hex[:24], "client_msg_id": "m1", "text": "boo"},
    )
    assert error["code"] == "not_found", error


# --- where the web client may connect ---------------------------------------------------------


def connect_src(policy: str) -> list[str]:
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    return directives["connect-src"].split()


async def test_the_pages_policy_names_its_own_origin_and_the_configured_apis_only(
    stack: Stack,
) -> None:
    gateway = stack.gateways[0]
    host = f"127.0.0.1:{gateway.port}"
    async with httpx.AsyncClient(timeout=10) as client:
        page = await client.get(f"{gateway.url}/")
        assert page.status_code == 200
        sources = connect_src(page.headers["content-security-policy"])
        # The stack configures PUBLIC_AUTH_URL and PUBLIC_MESSAGE_URL (with a trailing path
        # or not, only their origins count); the socket opens to the page's own host.
        assert sources == [
            "'self'",
            f"ws://{host}",
            f"wss://{host}",
            stack.env_of("gateway")["PUBLIC_AUTH_URL"].rstrip("/"),
            stack.env_of("gateway")["PUBLIC_MESSAGE_URL"].rstrip("/"),
        ]
        assert not {"ws:", "wss:", "*", "http:", "https:"} & set(sources)

        # The page asked by another name of the same server: that name, and nothing else.
        page = await client.get(f"{gateway.url}/", headers={"Host": f"localhost:{gateway.port}"})
        sources = connect_src(page.headers["content-security-policy"])
        assert sources[:3] == [
            "'self'",
            f"ws://localhost:{gateway.port}",
            f"wss://localhost:{gateway.port}",
        ]

        # A Host header that would smuggle a directive in is left out of the policy.
        for host_header in ("evil.example; script-src *", "a b", "x'y", ""):
            page = await client.get(f"{gateway.url}/", headers={"Host": host_header})
            policy = page.headers["content-security-policy"]
            assert connect_src(policy)[0] == "'self'"
            assert not [s for s in connect_src(policy) if s.startswith(("ws", "evil"))], policy
            assert policy.count("script-src") == 1, policy
