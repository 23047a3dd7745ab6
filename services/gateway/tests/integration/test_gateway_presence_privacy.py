"""Presence follows the subject's settings and blocks (CONTRACT §7.2), on real processes.

Who hears of a user's presence, and whom `presence:query` shows, is decided by
the message service (`presence.audience`, `presence.visible`) from what auth
publishes: contacts (users the subject has written to in a direct
conversation), minus those the subject blocked, and nobody when the subject
says so. Everyone else reads the subject offline and never seen.

The test publishes auth's `user.blocked` and `user.settings_changed` itself on
the stack's exchange, as auth's REST calls would: what is checked here is
what the gateways make of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest_asyncio
from gateway_support import Device

from chat_contracts import Envelope, UserSettings
from chat_contracts.events import Event, UserBlocked, UserSettingsChanged
from chat_platform.amqp import Broker
from chat_testkit.api import ChatApi, User
from chat_testkit.stack import Stack

DeviceFactory = Callable[..., Awaitable[Device]]

# Long enough for an emit that should not happen to have shown up.
SETTLE_SECONDS = 0.5
# The contract enforces a change everywhere within 2 s; some slack for a loaded machine.
ENFORCED_WITHIN_SECONDS = 5.0

HIDDEN = {"online": False, "last_seen": None}


def presence_of(user: User, online: bool) -> Callable[[Any], bool]:
    return lambda p: p["user_id"] == user.id and p["online"] is online


async def seen_by(viewer: Device, subject: User) -> dict[str, Any]:
    ack = await viewer.ok("presence:query", {"user_ids": [subject.id]})
    return dict(ack["presence"][subject.id])


async def until_seen_as(viewer: Device, subject: User, expected: dict[str, Any]) -> None:
    deadline = time.monotonic() + ENFORCED_WITHIN_SECONDS
    while (seen := await seen_by(viewer, subject)) != expected:
        assert time.monotonic() < deadline, f"{viewer.label} still sees {seen}"
        await asyncio.sleep(0.1)


@pytest_asyncio.fixture(scope="module")
async def auth_events(stack: Stack) -> AsyncIterator[Broker]:
    """A publisher of the events the auth service would publish, on the stack's exchange."""
    broker = Broker(stack.env["AMQP_URL"], f"{stack.env['NAMESPACE']}.events", name="as-auth")
    await broker.start()
    yield broker
    await broker.close()


async def publish(broker: Broker, event: Event) -> None:
    await broker.publish(Envelope.wrap(event, "chat-auth"))


async def test_presence_reaches_contacts_only_and_follows_blocks_and_settings(
    api: ChatApi, stack: Stack, devices: DeviceFactory, auth_events: Broker
) -> None:
    dave, alice, bob, carol, eve = await api.register_many(5)
    # Dave wrote to Alice and to Bob: his contacts. Carol only shares a group with him, and
    # Eve wrote to him without an answer: neither is a contact of his.
    for friend in (alice, bob):
        await api.sent(dave, (await api.direct(dave, friend))["id"], "hello")
    await api.group(dave, [carol])
    await api.sent(eve, (await api.direct(eve, dave))["id"], "are you there?")

    gw1, gw2 = stack.gateways
    a = await devices(alice, gw1, "alice@gw1")
    b = await devices(bob, gw2, "bob@gw2")
    c = await devices(carol, gw1, "carol@gw1")
    e = await devices(eve, gw2, "eve@gw2")

    d = await devices(dave, gw2, "dave@gw2")
    for contact in (a, b):
        await contact.wait_for("presence", presence_of(dave, True))
        assert await seen_by(contact, dave) == {"online": True, "last_seen": None}
    for outsider in (c, e):
        assert await seen_by(outsider, dave) == HIDDEN
    # Dave's own presence is his to see.
    assert await seen_by(d, dave) == {"online": True, "last_seen": None}

    # Dave blocks Bob: Bob's device is told at once that Dave is offline and never seen, and
    # hears nothing more of him.
    await publish(auth_events, UserBlocked(blocker_id=dave.id, blocked_id=bob.id))
    await b.wait_for("presence", lambda p: p == {"user_id": dave.id, **HIDDEN})
    await until_seen_as(b, dave, HIDDEN)
    await d.close()
    (offline,) = await a.wait_for("presence", presence_of(dave, False))
    assert offline["last_seen"]
    last_seen = (await seen_by(a, dave))["last_seen"]
    assert datetime.fromisoformat(last_seen) == datetime.fromisoformat(offline["last_seen"])
    assert await seen_by(b, dave) == HIDDEN

    # Dave lets nobody see his presence: Alice, his contact, no longer does either.
    nobody = UserSettings(presence_visible_to="nobody")
    await publish(auth_events, UserSettingsChanged(user_id=dave.id, settings=nobody))
    await until_seen_as(a, dave, HIDDEN)
    d = await devices(dave, gw1, "dave@gw1")
    await asyncio.sleep(SETTLE_SECONDS)
    assert await seen_by(a, dave) == HIDDEN
    assert (await seen_by(d, dave))["online"] is True

    # Alice heard online, offline, then hidden; Bob online, then only hidden; Carol and Eve
    # nothing but hidden, which tells nothing.
    def heard(device: Device) -> list[tuple[bool, bool]]:
        events = device.of("presence", lambda p: p["user_id"] == dave.id)
        return [(p["online"], p["last_seen"] is not None) for p in events]

    assert heard(a) == [(True, False), (False, True), (False, False)]
    assert heard(b) == [(True, False), (False, False), (False, False)]
    assert heard(c) == heard(e) == [(False, False)]
