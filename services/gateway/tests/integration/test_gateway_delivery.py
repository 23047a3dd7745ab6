"""Cross-instance delivery: whatever gateway a device is on, it gets every event once.

Two gateways share Redis (the Socket.IO manager) and the events queue: each
event is handled by one gateway and must still reach devices on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from gateway_support import Device, sorted_seqs

from chat_testkit.api import ChatApi, User
from chat_testkit.stack import Stack

DeviceFactory = Callable[..., Awaitable[Device]]

# Long enough for a duplicate emitted by the other instance to have shown up.
SETTLE_SECONDS = 0.5


def in_conversation(conversation_id: str) -> Callable[[Any], bool]:
    return lambda data: data.get("conversation_id") == conversation_id


async def four_devices(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> tuple[list[User], str, list[Device]]:
    """Alice on both gateways, Bob on the second, Carol on the first, in one group."""
    alice, bob, carol = await api.register_many(3)
    group = await api.group(alice, [bob, carol])
    gw1, gw2 = stack.gateways
    connected = await asyncio.gather(
        devices(alice, gw1, "alice@gw1"),
        devices(alice, gw2, "alice@gw2"),
        devices(bob, gw2, "bob@gw2"),
        devices(carol, gw1, "carol@gw1"),
    )
    return [alice, bob, carol], group["id"], list(connected)


async def test_every_device_gets_every_message_once(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    _, cid, everyone = await four_devices(api, stack, devices)
    a1, _, b1, _ = everyone
    acks = await asyncio.gather(
        *(a1.send(cid, f"from alice {i}") for i in range(25)),
        *(b1.send(cid, f"from bob {i}") for i in range(25)),
    )
    sent = {m["id"]: m for m in acks}
    assert sorted_seqs(acks) == list(range(1, 51))

    for device in everyone:
        await device.wait_for("message:new", in_conversation(cid), count=50)
    await asyncio.sleep(SETTLE_SECONDS)
    for device in everyone:
        got = device.of("message:new", in_conversation(cid))
        ids = [m["id"] for m in got]
        assert len(ids) == len(set(ids)) == 50, (device.label, len(ids), len(set(ids)))
        assert set(ids) == set(sent), device.label
        assert sorted_seqs(got) == list(range(1, 51)), device.label
        for message in got:
            assert message == sent[message["id"]], device.label


async def test_one_devices_quick_sends_are_stored_in_the_order_it_sent_them(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    phone = await devices(alice, stack.gateways[0], "alice@gw1")
    # All sent before the first is acknowledged; each is handled in a task of its own.
    acks = await asyncio.gather(*(phone.send(cid, f"line {i}") for i in range(20)))
    assert [m["text"] for m in acks] == [f"line {i}" for i in range(20)]
    assert [m["seq"] for m in acks] == list(range(1, 21))


async def test_edits_and_deletes_reach_every_device_once(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    (alice, _, _), cid, everyone = await four_devices(api, stack, devices)
    message = await everyone[0].send(cid, "first draft")
    for device in everyone:
        await device.wait_for("message:new", lambda m: m["id"] == message["id"])

    await api.edit_message(alice, cid, message["id"], "second draft")
    for device in everyone:
        (updated,) = await device.wait_for("message:updated", lambda m: m["id"] == message["id"])
        assert updated["text"] == "second draft", updated
        assert updated["edited_at"], updated
        assert updated["seq"] == message["seq"]
        assert not updated["deleted"]

    await api.delete_message(alice, cid, message["id"])
    for device in everyone:
        (deleted,) = await device.wait_for("message:deleted", lambda m: m["id"] == message["id"])
        assert deleted["deleted"] is True, deleted
        assert deleted["text"] is None, deleted
    await asyncio.sleep(SETTLE_SECONDS)
    for device in everyone:
        assert len(device.of("message:updated")) == 1, device.label
        assert len(device.of("message:deleted")) == 1, device.label


async def test_receipts_reach_every_member(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    (_, bob, carol), cid, everyone = await four_devices(api, stack, devices)
    a1, _, b1, c1 = everyone
    first = await a1.send(cid, "one")
    second = await a1.send(cid, "two")

    await b1.ok("message:delivered", {"conversation_id": cid, "seq": second["seq"]})
    delivered = {"conversation_id": cid, "user_id": bob.id, "kind": "delivered", "seq": 2}
    for device in everyone:
        await device.wait_for("receipt", lambda r: r == delivered)

    await c1.ok("conversation:read", {"conversation_id": cid, "seq": first["seq"]})
    read = {"conversation_id": cid, "user_id": carol.id, "kind": "read", "seq": 1}
    # Reading implies delivery: Carol's delivered cursor moves along, and says so.
    carol_delivered = {**read, "kind": "delivered"}
    for device in everyone:
        await device.wait_for("receipt", lambda r: r == read)
        await device.wait_for("receipt", lambda r: r == carol_delivered)

    # Cursors never move back: an older seq is acknowledged but tells nobody anything.
    await b1.ok("message:delivered", {"conversation_id": cid, "seq": first["seq"]})
    await c1.ok("conversation:read", {"conversation_id": cid, "seq": 0})
    await asyncio.sleep(SETTLE_SECONDS)
    expected = sorted(map(str, [delivered, read, carol_delivered]))
    for device in everyone:
        assert sorted(map(str, device.of("receipt"))) == expected, device.label


async def test_membership_changes_reach_members_and_the_removed_one(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    alice, bob, dave = await api.register_many(3)
    gw1, gw2 = stack.gateways
    a1 = await devices(alice, gw1, "alice@gw1")
    b1 = await devices(bob, gw2, "bob@gw2")
    d1 = await devices(dave, gw2, "dave@gw2")

    group = await api.group(alice, [bob], title="plans")
    gid = group["id"]
    for device in (a1, b1):
        (created,) = await device.wait_for("conversation:updated", lambda c: c["id"] == gid)
        assert set(created["member_ids"]) == {alice.id, bob.id}
        assert created["title"] == "plans"
        assert created["type"] == "group"

    await api.add_members(alice, gid, [dave])
    with_dave = {alice.id, bob.id, dave.id}
    for device in (a1, b1, d1):
        await device.wait_for(
            "conversation:updated", lambda c: c["id"] == gid and set(c["member_ids"]) == with_dave
        )
    message = await a1.send(gid, "welcome dave")
    await d1.wait_for("message:new", lambda m: m["id"] == message["id"])

    await api.remove_member(alice, gid, dave)
    for device in (a1, b1, d1):
        await device.wait_for(
            "conversation:updated",
            lambda c: c["id"] == gid and set(c["member_ids"]) == {alice.id, bob.id},
        )

    # Once removed, Dave hears nothing more from the group.
    after = await a1.send(gid, "dave is gone")
    await b1.wait_for("message:new", lambda m: m["id"] == after["id"])
    await asyncio.sleep(SETTLE_SECONDS)
    assert [m["id"] for m in d1.of("message:new", in_conversation(gid))] == [message["id"]]
    assert len(d1.of("conversation:updated", lambda c: c["id"] == gid)) == 2


async def test_typing_goes_to_the_other_members_only_and_stops_by_itself(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    (alice, bob, carol), cid, everyone = await four_devices(api, stack, devices)
    a1, a2, b1, c1 = everyone
    timeout = float(stack.env_of("gateway")["TYPING_TIMEOUT_SECONDS"])

    def typing_of(user: User, is_typing: bool) -> Callable[[Any], bool]:
        expected = {"conversation_id": cid, "user_id": user.id, "is_typing": is_typing}
        return lambda t: t == expected

    started = asyncio.get_running_loop().time()
    await a1.ok("typing", {"conversation_id": cid, "is_typing": True})
    for device in (b1, c1):
        await device.wait_for("typing", typing_of(alice, True))
    # No stop from Alice: it stops by itself after the timeout.
    for device in (b1, c1):
        await device.wait_for("typing", typing_of(alice, False), timeout=timeout + 5)
    assert asyncio.get_running_loop().time() - started >= timeout * 0.9

    # An explicit stop ends it at once, and no second stop follows when the timer would have.
    await b1.ok("typing", {"conversation_id": cid, "is_typing": True})
    await b1.ok("typing", {"conversation_id": cid, "is_typing": False})
    for device in (a1, a2, c1):
        await device.wait_for("typing", typing_of(bob, False))

    # Sending a message ends typing too, once.
    await c1.ok("typing", {"conversation_id": cid, "is_typing": True})
    await c1.send(cid, "done typing")
    for device in (a1, a2, b1):
        await device.wait_for("typing", typing_of(carol, False))

    await asyncio.sleep(timeout + SETTLE_SECONDS)
    for device in everyone:
        got = [(t["user_id"], t["is_typing"]) for t in device.of("typing")]
        expected = [
            (user.id, flag)
            for user in (alice, bob, carol)
            if user.id != device.user.id
            for flag in (True, False)
        ]
        # Each typist's own devices heard nothing of their own typing.
        assert sorted(got) == sorted(expected), device.label


async def test_presence_goes_to_contacts_only(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    alice, dave, stranger = await api.register_many(3)
    # Alice is Dave's contact once Dave has written to her (CONTRACT §7.5).
    await api.sent(dave, (await api.direct(alice, dave))["id"], "hi")
    gw1, gw2 = stack.gateways
    a1 = await devices(alice, gw1, "alice@gw1")
    s1 = await devices(stranger, gw2, "stranger@gw2")

    def presence_of(online: bool) -> Callable[[Any], bool]:
        return lambda p: p["user_id"] == dave.id and p["online"] is online

    # Dave on two devices, one per gateway: online with the first, offline after the last.
    d1 = await devices(dave, gw2, "dave@gw2")
    (online,) = await a1.wait_for("presence", presence_of(True))
    assert online == {"user_id": dave.id, "online": True, "last_seen": None}
    d2 = await devices(dave, gw1, "dave@gw1")

    seen_by_alice = await a1.ok("presence:query", {"user_ids": [dave.id]})
    assert seen_by_alice["presence"] == {dave.id: {"online": True, "last_seen": None}}
    seen_by_stranger = await s1.ok("presence:query", {"user_ids": [dave.id, alice.id]})
    assert seen_by_stranger["presence"] == {
        dave.id: {"online": False, "last_seen": None},
        alice.id: {"online": False, "last_seen": None},
    }

    await d1.close()
    await asyncio.sleep(SETTLE_SECONDS)
    assert a1.of("presence", presence_of(False)) == [], "offline while a device is connected"
    assert (await a1.ok("presence:query", {"user_ids": [dave.id]}))["presence"][dave.id][
        "online"
    ] is True

    await d2.close()
    (offline,) = await a1.wait_for("presence", presence_of(False))
    assert offline["last_seen"], offline
    after = await a1.ok("presence:query", {"user_ids": [dave.id]})
    assert after["presence"][dave.id]["online"] is False
    assert after["presence"][dave.id]["last_seen"]

    await asyncio.sleep(SETTLE_SECONDS)
    assert len(a1.of("presence", lambda p: p["user_id"] == dave.id)) == 2
    assert s1.of("presence") == [], "a stranger heard of Dave's presence"
