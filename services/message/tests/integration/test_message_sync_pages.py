"""`sync` answers of bounded size: cut answers say so, and calling again pages through all of it."""

from __future__ import annotations

from typing import Any

import pytest

from chat_contracts.commands import Sync, SyncResult
from chat_contracts.socket import SyncPayload
from chat_platform.amqp import CommandClient
from chat_testkit.api import ChatApi, User

pytestmark = pytest.mark.usefixtures("service_log_clean")

MAX_MESSAGES = 5


@pytest.fixture(scope="module")
def message_extra_env() -> dict[str, str]:
    return {"SYNC_MAX_MESSAGES": str(MAX_MESSAGES), "SYNC_MAX_BYTES": "4000"}


async def sync(client: CommandClient, user: User, **request: Any) -> SyncResult:
    payload = SyncPayload.model_validate(request, strict=False)
    return await client.call(Sync(user_id=user.id, request=payload))


async def sync_all(
    client: CommandClient, user: User, cursors: dict[str, int], since: str | None = None
) -> tuple[list[SyncResult], dict[str, list[dict[str, Any]]]]:
    """Sync as a client must: again with the new cursors and the same `since` until complete."""
    answers: list[SyncResult] = []
    received: dict[str, list[dict[str, Any]]] = {}
    while True:
        answer = await sync(client, user, cursors=cursors, since=since)
        answers.append(answer)
        assert len(answers) < 50, "sync does not converge"
        for entry in answer.conversations:
            cid = entry.conversation.id
            got = [m.model_dump(mode="json") for m in entry.messages]
            received.setdefault(cid, []).extend(got)
            if entry.messages:
                cursors[cid] = max(cursors.get(cid, 0), max(m.seq for m in entry.messages))
        if answer.complete:
            return answers, received


async def test_a_sync_over_the_bound_pages_through_everything_in_order(
    api: ChatApi, client: CommandClient
) -> None:
    alice, bob, carol = await api.register_many(3)
    direct = (await api.direct(alice, bob))["id"]
    group = (await api.group(carol, [bob]))["id"]
    for i in range(12):
        await api.sent(alice, direct, f"d{i}")
    for i in range(4):
        await api.sent(carol, group, f"g{i}")

    answers, received = await sync_all(client, bob, {direct: 0, group: 0})
    assert len(answers) >= 4  # 16 messages, at most 5 an answer
    for answer in answers:
        count = sum(len(c.messages) for c in answer.conversations)
        assert 1 <= count <= MAX_MESSAGES
        assert answer.complete is (answer is answers[-1])
    assert [m["seq"] for m in received[direct]] == list(range(1, 13))
    assert [m["text"] for m in received[group]] == ["g0", "g1", "g2", "g3"]

    # Up to date now: one complete answer with nothing in it.
    again = await sync(client, bob, cursors={direct: 12, group: 4})
    assert again.complete
    assert again.conversations == []


async def test_large_messages_are_cut_by_bytes_but_each_answer_carries_one(
    api: ChatApi, client: CommandClient
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    for i in range(3):
        await api.sent(alice, cid, f"{i}" + "ü" * 3000)  # each one over the 4000-byte bound
    answers, received = await sync_all(client, bob, {cid: 0})
    assert [sum(len(c.messages) for c in a.conversations) for a in answers] == [1, 1, 1]
    assert [m["seq"] for m in received[cid]] == [1, 2, 3]


async def test_edits_come_with_the_last_answer_and_too_many_mark_the_history_stale(
    api: ChatApi, client: CommandClient
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    sent = [await api.sent(alice, cid, f"m{i}") for i in range(8)]
    first = await sync(client, bob, cursors={cid: 8})
    assert first.complete
    since = first.synced_at.isoformat()

    edited = (
        await api.patch(
            alice, f"/v1/conversations/{cid}/messages/{sent[1]['id']}", json={"text": "m1!"}
        )
    ).json()
    later = [await api.sent(alice, cid, f"n{i}") for i in range(7)]
    answers, received = await sync_all(client, bob, {cid: 8}, since=since)
    assert all(not a.complete for a in answers[:-1])
    *_, last = answers
    (entry,) = last.conversations
    assert not entry.history_stale
    assert edited in [m.model_dump(mode="json") for m in entry.messages]
    assert [m["seq"] for m in received[cid] if m["seq"] > 8] == [m["seq"] for m in later]

    # More edits than an answer holds: the device is told to reload, rather than looping.
    for message in sent[2:]:
        path = f"/v1/conversations/{cid}/messages/{message['id']}"
        assert (await api.patch(alice, path, json={"text": "again"})).status_code == 200
    answers, _ = await sync_all(client, bob, {cid: 15}, since=since)
    (final,) = answers
    (entry,) = final.conversations
    assert entry.history_stale
    assert len(entry.messages) == MAX_MESSAGES
