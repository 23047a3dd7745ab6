"""Messages, history and read cursors (black box)."""

from __future__ import annotations

from datetime import datetime

import pytest

from chat_testkit.api import ChatApi, User, new_client_msg_id
from chat_testkit.contract import assert_error
from chat_testkit.stored import Stored

pytestmark = pytest.mark.usefixtures("service_log_clean")

MESSAGE_KEYS = {
    "id",
    "conversation_id",
    "seq",
    "sender_id",
    "client_msg_id",
    "text",
    "attachments",
    "reply_to_id",
    "created_at",
    "edited_at",
    "deleted",
}


async def pair(api: ChatApi) -> tuple[User, User, str]:
    alice, bob = await api.register_many(2)
    return alice, bob, (await api.direct(alice, bob))["id"]


async def test_messages_are_numbered_1_to_n_in_each_conversation(api: ChatApi) -> None:
    alice, bob, cid = await pair(api)
    other = (await api.group(alice, [bob]))["id"]
    sent = []
    for i in range(6):
        sender = alice if i % 2 == 0 else bob
        sent.append(await api.sent(sender, cid, f"m{i}"))
    elsewhere = await api.sent(alice, other, "elsewhere")

    message = sent[0]
    assert set(message) == MESSAGE_KEYS
    assert (message["conversation_id"], message["sender_id"]) == (cid, alice.id)
    assert message["attachments"] == []
    assert (message["reply_to_id"], message["edited_at"], message["deleted"]) == (None, None, False)
    assert datetime.fromisoformat(message["created_at"]).utcoffset() is not None
    assert [m["seq"] for m in sent] == [1, 2, 3, 4, 5, 6]
    assert elsewhere["seq"] == 1

    history = await api.history(bob, cid)
    assert history["items"] == sent
    assert history["has_more"] is False
    conversation = await api.conversation(alice, cid)
    assert conversation["last_seq"] == 6
    assert conversation["last_message"] == sent[-1]


async def test_the_same_client_msg_id_returns_the_stored_message(
    api: ChatApi, stored: Stored
) -> None:
    alice, bob, cid = await pair(api)
    key = new_client_msg_id()
    first = await api.send(alice, cid, "once", client_msg_id=key)
    assert first.status_code == 201
    before = stored()

    retry = await api.send(alice, cid, "once", client_msg_id=key)
    assert retry.status_code == 200
    assert retry.json() == first.json()
    # What counts is the key: a retry whose text changed still gets the stored message.
    changed = await api.send(alice, cid, "changed on retry", client_msg_id=key)
    assert changed.status_code == 200
    assert changed.json() == first.json()
    assert stored() == before

    # Keys are per sender: the same key from someone else is a message of its own.
    theirs = await api.send(bob, cid, "mine", client_msg_id=key)
    assert theirs.status_code == 201
    assert theirs.json()["seq"] == 2
    assert [m["seq"] for m in (await api.history(alice, cid))["items"]] == [1, 2]


async def test_a_reply_points_at_a_message_of_the_conversation(api: ChatApi) -> None:
    alice, bob, cid = await pair(api)
    question = await api.sent(alice, cid, "lunch?")
    answer = await api.sent(bob, cid, "yes", reply_to_id=question["id"])
    assert answer["reply_to_id"] == question["id"]
    assert (await api.history(alice, cid))["items"][1]["reply_to_id"] == question["id"]


async def test_the_sender_edits_a_message(api: ChatApi) -> None:
    alice, bob, cid = await pair(api)
    first = await api.sent(alice, cid, "helo")
    last = await api.sent(alice, cid, "wrold")

    edited = await api.patch(
        alice, f"/v1/conversations/{cid}/messages/{first['id']}", json={"text": "hello"}
    )
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert (body["id"], body["seq"], body["text"]) == (first["id"], 1, "hello")
    assert body["edited_at"] is not None
    assert body["created_at"] == first["created_at"]
    assert (await api.history(bob, cid))["items"][0] == body

    # Editing the last message keeps the conversation's preview in step.
    await api.patch(alice, f"/v1/conversations/{cid}/messages/{last['id']}", json={"text": "world"})
    preview = (await api.conversation(bob, cid))["last_message"]
    assert (preview["id"], preview["text"]) == (last["id"], "world")
    assert preview["edited_at"] is not None


async def test_only_the_sender_edits_or_deletes(api: ChatApi, stored: Stored) -> None:
    alice, bob, cid = await pair(api)
    message = await api.sent(alice, cid, "mine")
    path = f"/v1/conversations/{cid}/messages/{message['id']}"
    before = stored()
    assert_error(await api.patch(bob, path, json={"text": "yours now"}), 403, "forbidden")
    assert_error(await api.delete(bob, path), 403, "forbidden")
    assert (await api.history(alice, cid))["items"] == [message]
    assert stored() == before


async def test_a_deleted_message_stays_as_a_tombstone(api: ChatApi, stored: Stored) -> None:
    alice, bob, cid = await pair(api)
    first = await api.sent(alice, cid, "oops")
    second = await api.sent(bob, cid, "what?")
    before = stored()
    path = f"/v1/conversations/{cid}/messages/{first['id']}"

    deleted = await api.delete(alice, path)
    assert deleted.status_code == 204
    items = (await api.history(bob, cid))["items"]
    assert [m["seq"] for m in items] == [1, 2]
    tombstone = items[0]
    assert (tombstone["id"], tombstone["deleted"], tombstone["text"]) == (first["id"], True, None)
    assert tombstone["attachments"] == []
    assert items[1] == second
    assert stored()["messages"] == before["messages"]

    # Deleting twice is harmless; a deleted message cannot be edited back.
    assert (await api.delete(alice, path)).status_code == 204
    assert_error(await api.patch(alice, path, json={"text": "back"}), 409, "conflict")
    assert (await api.history(bob, cid))["items"][0] == tombstone
    # The next message still takes the next seq: a tombstone keeps its place.
    assert (await api.sent(alice, cid, "again"))["seq"] == 3


async def test_deleting_the_last_message_updates_the_preview(api: ChatApi) -> None:
    alice, bob, cid = await pair(api)
    message = await api.sent(alice, cid, "secret")
    await api.delete(alice, f"/v1/conversations/{cid}/messages/{message['id']}")
    preview = (await api.conversation(bob, cid))["last_message"]
    assert (preview["id"], preview["deleted"], preview["text"]) == (message["id"], True, None)


async def test_history_pages_backwards_and_forwards(api: ChatApi) -> None:
    alice, bob, cid = await pair(api)
    for i in range(7):
        await api.sent(alice if i % 2 else bob, cid, f"m{i + 1}")

    async def seqs(**params: int) -> tuple[list[int], bool]:
        page = await api.history(bob, cid, **params)
        assert set(page) == {"items", "has_more"}
        return [m["seq"] for m in page["items"]], page["has_more"]

    assert await seqs() == ([1, 2, 3, 4, 5, 6, 7], False)
    assert await seqs(limit=3) == ([5, 6, 7], True)
    assert await seqs(before_seq=5, limit=3) == ([2, 3, 4], True)
    assert await seqs(before_seq=2, limit=3) == ([1], False)
    assert await seqs(before_seq=1) == ([], False)
    assert await seqs(before_seq=8, limit=2) == ([6, 7], True)
    assert await seqs(after_seq=0, limit=3) == ([1, 2, 3], True)
    assert await seqs(after_seq=3, limit=4) == ([4, 5, 6, 7], False)
    assert await seqs(after_seq=6) == ([7], False)
    assert await seqs(after_seq=7) == ([], False)
    assert await seqs(after_seq=0, limit=7) == ([1, 2, 3, 4, 5, 6, 7], False)
    texts = [m["text"] for m in (await api.history(alice, cid, after_seq=5))["items"]]
    assert texts == ["m6", "m7"]


async def test_history_limit_defaults_to_50_and_caps_at_200(api: ChatApi) -> None:
    alice, bob, cid = await pair(api)
    for _ in range(55):
        await api.sent(alice, cid, "x")
    default = await api.history(bob, cid)
    assert [m["seq"] for m in default["items"]] == list(range(6, 56))
    assert default["has_more"] is True
    assert len((await api.history(bob, cid, limit=200))["items"]) == 55
    assert_error(
        await api.get(bob, f"/v1/conversations/{cid}/messages", params={"limit": 201}),
        422,
        "validation_error",
    )


async def test_the_read_cursor_only_moves_forward(api: ChatApi) -> None:
    alice, bob, cid = await pair(api)
    for _ in range(5):
        await api.sent(alice, cid)

    async def bob_sees() -> tuple[int, int]:
        conversation = await api.conversation(bob, cid)
        assert conversation["unread_count"] == conversation["last_seq"] - conversation["read_seq"]
        return conversation["read_seq"], conversation["unread_count"]

    assert await bob_sees() == (0, 5)
    read = await api.post(bob, f"/v1/conversations/{cid}/read", json={"seq": 3})
    assert (read.status_code, read.content) == (204, b"")
    assert await bob_sees() == (3, 2)

    backwards = await api.post(bob, f"/v1/conversations/{cid}/read", json={"seq": 1})
    assert backwards.status_code == 204
    assert await bob_sees() == (3, 2)
    same = await api.post(bob, f"/v1/conversations/{cid}/read", json={"seq": 3})
    assert same.status_code == 204
    assert await bob_sees() == (3, 2)

    assert (
        await api.post(bob, f"/v1/conversations/{cid}/read", json={"seq": 5})
    ).status_code == 204
    assert await bob_sees() == (5, 0)
    await api.sent(alice, cid)
    assert await bob_sees() == (5, 1)
    assert (
        await api.post(bob, f"/v1/conversations/{cid}/read", json={"seq": 0})
    ).status_code == 204
    assert await bob_sees() == (5, 1)
    # Alice's own cursor is unaffected by Bob's.
    as_alice = await api.conversation(alice, cid)
    assert (as_alice["read_seq"], as_alice["unread_count"]) == (6, 0)


async def test_sending_reads_the_conversation_up_to_ones_own_message(api: ChatApi) -> None:
    alice, bob, cid = await pair(api)
    for _ in range(4):
        await api.sent(alice, cid)
    as_bob = await api.conversation(bob, cid)
    assert (as_bob["read_seq"], as_bob["unread_count"]) == (0, 4)

    await api.sent(bob, cid, "caught up")
    as_bob = await api.conversation(bob, cid)
    assert (as_bob["last_seq"], as_bob["read_seq"], as_bob["unread_count"]) == (5, 5, 0)
    as_alice = await api.conversation(alice, cid)
    assert (as_alice["read_seq"], as_alice["unread_count"]) == (4, 1)

    listed = (await api.get(alice, "/v1/conversations")).json()["items"]
    assert [(c["id"], c["unread_count"]) for c in listed] == [(cid, 1)]


async def test_text_up_to_the_limit_is_kept_exactly(api: ChatApi) -> None:
    alice, bob, cid = await pair(api)
    text = "é" * 3999 + "\U0001f600"
    message = await api.sent(alice, cid, text)
    assert message["text"] == text
    assert (await api.history(bob, cid))["items"][0]["text"] == text
