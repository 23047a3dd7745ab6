"""`sync`: what a device gets back after missing events, as current state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway_support import Device

from chat_testkit.api import ChatApi
from chat_testkit.stack import Stack

DeviceFactory = Callable[..., Awaitable[Device]]


def entries(ack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The sync answer's conversations by id, checked for the contract's shape."""
    assert set(ack) == {"ok", "conversations", "removed_conversation_ids", "synced_at", "complete"}
    found = {}
    for entry in ack["conversations"]:
        assert set(entry) == {"conversation", "messages", "has_more", "history_stale"}, entry
        seqs = [m["seq"] for m in entry["messages"]]
        assert seqs == sorted(seqs), seqs
        found[entry["conversation"]["id"]] = entry
    assert len(found) == len(ack["conversations"]), "a conversation appears twice"
    return found


def texts(entry: dict[str, Any]) -> list[str]:
    return [m["text"] for m in entry["messages"]]


async def test_sync_returns_exactly_what_a_disconnected_device_missed(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    alice, bob, carol = await api.register_many(3)
    direct = (await api.direct(alice, bob))["id"]
    group = (await api.group(alice, [bob, carol]))["id"]
    quiet = (await api.direct(bob, carol))["id"]
    gw1, gw2 = stack.gateways
    a1 = await devices(alice, gw1, "alice@gw1")
    b1 = await devices(bob, gw2, "bob@gw2")

    for i in range(1, 4):
        await a1.send(direct, f"d{i}")
    await a1.send(group, "g1")
    await api.sent(carol, quiet, "q1")
    await b1.wait_for("message:new", count=5)
    held = {m["id"]: m for m in b1.of("message:new")}
    cursors = {direct: 3, group: 1, quiet: 1}
    await b1.close()

    missed = [await a1.send(direct, f"d{i}") for i in range(4, 8)]
    missed += [await a1.send(group, "g2"), await api.sent(carol, group, "g3")]

    b2 = await devices(bob, gw1, "bob@gw1 again")
    got = entries(await b2.sync(cursors))
    assert texts(got[direct]) == ["d4", "d5", "d6", "d7"]
    assert texts(got[group]) == ["g2", "g3"]
    assert not got.get(quiet, {}).get("messages"), "an up-to-date conversation sent messages"
    assert got[direct]["has_more"] is False
    assert got[group]["has_more"] is False
    assert got[direct]["conversation"]["last_seq"] == 7
    synced = [m for entry in got.values() for m in entry["messages"]]
    assert {m["id"] for m in synced} == {m["id"] for m in missed}
    # Merged with what the device held: every message once, gapless per conversation.
    merged = {**held, **{m["id"]: m for m in synced}}
    assert len(merged) == len(held) + len(synced) == 11
    for cid, last in ((direct, 7), (group, 3)):
        seqs = sorted(m["seq"] for m in merged.values() if m["conversation_id"] == cid)
        assert seqs == list(range(1, last + 1))


async def test_sync_since_returns_edits_and_deletes_of_held_messages(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    a1 = await devices(alice, stack.gateways[0])
    sent = [await a1.send(cid, f"m{i}") for i in range(1, 6)]

    b1 = await devices(bob, stack.gateways[1])
    first = await b1.sync({cid: 0})
    assert texts(entries(first)[cid]) == ["m1", "m2", "m3", "m4", "m5"]
    await b1.close()

    await api.edit_message(alice, cid, sent[1]["id"], "m2 edited")
    await api.delete_message(alice, cid, sent[3]["id"])
    await a1.send(cid, "m6")

    b2 = await devices(bob, stack.gateways[0])
    got = entries(await b2.sync({cid: 5}, since=first["synced_at"]))[cid]
    by_seq = {m["seq"]: m for m in got["messages"]}
    assert sorted(by_seq) == [2, 4, 6]
    assert by_seq[2]["text"] == "m2 edited"
    assert by_seq[2]["edited_at"]
    assert by_seq[4]["deleted"] is True
    assert by_seq[4]["text"] is None
    assert by_seq[6]["text"] == "m6"

    # Without `since`, only what comes after the cursor.
    plain = entries(await b2.sync({cid: 5}))[cid]
    assert [m["seq"] for m in plain["messages"]] == [6]


async def test_sync_brings_new_conversations_and_names_the_ones_left(
    api: ChatApi, stack: Stack, devices: DeviceFactory
) -> None:
    alice, bob, carol = await api.register_many(3)
    kept = (await api.direct(alice, bob))["id"]
    leaving = (await api.group(alice, [bob, carol], title="old"))["id"]
    await api.sent(alice, kept, "k1")
    await api.sent(alice, leaving, "l1")
    cursors = {kept: 1, leaving: 1}

    # While Bob is away: a new group with him, and he is removed from the old one.
    new = (await api.group(carol, [alice, bob], title="new"))["id"]
    await api.sent(carol, new, "n1")
    await api.sent(alice, new, "n2")
    await api.remove_member(alice, leaving, bob)
    await api.sent(alice, leaving, "l2 after bob left")

    b1 = await devices(bob, stack.gateways[1])
    ack = await b1.sync(cursors)
    got = entries(ack)
    assert texts(got[new]) == ["n1", "n2"]
    assert got[new]["conversation"]["title"] == "new"
    assert set(got[new]["conversation"]["member_ids"]) == {alice.id, bob.id, carol.id}
    assert leaving not in got
    assert ack["removed_conversation_ids"] == [leaving]
    assert not got.get(kept, {}).get("messages")

    # An empty sync (a fresh device) gets every conversation Bob is in, and only those.
    fresh = entries(await b1.sync({}))
    assert set(fresh) == {kept, new}


async def test_sync_pages_with_has_more(api: ChatApi, stack: Stack, devices: DeviceFactory) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    a1 = await devices(alice, stack.gateways[0])
    for i in range(1, 8):
        await a1.send(cid, f"p{i}")
    b1 = await devices(bob, stack.gateways[1])

    pages, cursor = [], 0
    while True:
        ack = await b1.sync({cid: cursor}, limit=3)
        entry = entries(ack)[cid]
        # More after the cursor: the answer is not complete, and says so.
        assert ack["complete"] is not entry["has_more"]
        pages.append([m["seq"] for m in entry["messages"]])
        cursor = entry["messages"][-1]["seq"]
        if not entry["has_more"]:
            break
        assert len(pages) < 5, pages
    assert pages == [[1, 2, 3], [4, 5, 6], [7]]

    # A conversation new to the device starts from its latest page.
    ack = await b1.sync({}, limit=3)
    latest = entries(ack)[cid]
    assert [m["seq"] for m in latest["messages"]] == [5, 6, 7]
    # Older history exists, but nothing after the latest page: complete.
    assert latest["has_more"] is True
    assert ack["complete"] is True
