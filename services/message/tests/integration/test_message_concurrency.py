"""Concurrent senders and creators: gapless seqs, one message per key, one direct conversation."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from message_support import UNLIMITED_RATES, metric_value

from chat_testkit import ServiceProcess
from chat_testkit.api import ChatApi, User, new_client_msg_id
from chat_testkit.process import log_problems
from chat_testkit.stored import Stored

pytestmark = pytest.mark.usefixtures("service_log_clean")


async def test_twenty_concurrent_senders_get_seq_1_to_n(api: ChatApi) -> None:
    owner, *others = await api.register_many(20)
    senders = [owner, *others]
    cid = (await api.group(owner, others, title="crowd"))["id"]
    per_sender = 5

    async def burst(user: User) -> list[int]:
        responses = await asyncio.gather(
            *(api.send(user, cid, f"{user.username} {i}") for i in range(per_sender))
        )
        assert [r.status_code for r in responses] == [201] * per_sender
        return [r.json()["seq"] for r in responses]

    seqs = [seq for user_seqs in await asyncio.gather(*map(burst, senders)) for seq in user_seqs]
    total = len(senders) * per_sender
    assert sorted(seqs) == list(range(1, total + 1))

    stored = await api.all_messages(owner, cid)
    assert [m["seq"] for m in stored] == list(range(1, total + 1))
    assert Counter(m["sender_id"] for m in stored) == {u.id: per_sender for u in senders}
    assert (await api.conversation(owner, cid))["last_seq"] == total


async def test_two_instances_writing_into_one_conversation_stay_gapless(
    api: ChatApi,
    auth_service: ServiceProcess,
    start_module_service: Callable[..., ServiceProcess],
) -> None:
    # A second chat-message on the same database: each numbers messages from the last_seq
    # it read, so the two collide on seqs and the loser of each collision must retry.
    second = start_module_service("chat-message", AUTH_URL=auth_service.url, **UNLIMITED_RATES)
    other = ChatApi(api.http, auth_url=auth_service.url, message_url=second.url)
    owner, *others = await api.register_many(20)
    senders = [owner, *others]
    cid = (await api.group(owner, others, title="two writers"))["id"]
    per_sender = 6

    async def burst(index: int, user: User) -> list[dict[str, Any]]:
        responses = await asyncio.gather(
            *(
                (api if (index + i) % 2 else other).send(user, cid, f"{user.username} {i}")
                for i in range(per_sender)
            )
        )
        assert [r.status_code for r in responses] == [201] * per_sender
        return [r.json() for r in responses]

    sent = [m for ms in await asyncio.gather(*map(burst, range(20), senders)) for m in ms]
    total = len(senders) * per_sender
    assert sorted(m["seq"] for m in sent) == list(range(1, total + 1))
    stored = await api.all_messages(owner, cid)
    assert [m["seq"] for m in stored] == list(range(1, total + 1))
    assert {m["id"]: m["seq"] for m in stored} == {m["id"]: m["seq"] for m in sent}
    assert (await other.conversation(owner, cid))["last_seq"] == total
    assert not log_problems(second.log_text())
    # Both wrote into the conversation, at the same time.
    for url in (api.message_url, second.url):
        page = (await api.http.get(f"{url}/metrics")).text
        assert metric_value(page, "chat_message_messages_stored_total") >= per_sender


async def test_one_user_with_twenty_keys_at_once_gets_twenty_messages(api: ChatApi) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    keys = [new_client_msg_id() for _ in range(20)]
    responses = await asyncio.gather(
        *(api.send(alice, cid, f"#{i}", client_msg_id=k) for i, k in enumerate(keys))
    )
    assert {r.status_code for r in responses} == {201}
    by_key = {r.json()["client_msg_id"]: r.json()["seq"] for r in responses}
    assert set(by_key) == set(keys)
    assert sorted(by_key.values()) == list(range(1, 21))


async def test_the_same_key_sent_ten_times_at_once_is_one_message(
    api: ChatApi, stored: Stored
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    await api.sent(bob, cid, "before")
    for _ in range(3):
        before = stored()["messages"]
        key = new_client_msg_id()
        responses = await asyncio.gather(
            *(api.send(alice, cid, "only once", client_msg_id=key) for _ in range(10))
        )
        assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
        assert len({r.json()["id"] for r in responses}) == 1
        assert stored()["messages"] == before + 1
    assert [m["seq"] for m in await api.all_messages(bob, cid)] == [1, 2, 3, 4]


async def test_one_key_sent_to_two_conversations_at_once_is_stored_once(
    api: ChatApi, stored: Stored
) -> None:
    alice, bob, carol = await api.register_many(3)
    first = (await api.direct(alice, bob))["id"]
    second = (await api.direct(alice, carol))["id"]
    for _ in range(5):
        before = stored()["messages"]
        key = new_client_msg_id()
        one, two = await asyncio.gather(
            api.send(alice, first, "here", client_msg_id=key),
            api.send(alice, second, "or there", client_msg_id=key),
        )
        assert sorted([one.status_code, two.status_code]) == [201, 422], (one.text, two.text)
        winner = one if one.status_code == 201 else two
        loser = two if winner is one else one
        assert loser.json()["error"]["code"] == "validation_error"
        assert winner.json()["conversation_id"] == (first if winner is one else second)
        assert stored()["messages"] == before + 1


async def test_both_sides_creating_a_direct_conversation_at_once_get_one(
    api: ChatApi, stored: Stored
) -> None:
    for _ in range(5):
        alice, bob = await api.register_many(2)
        before = stored()["conversations"]
        responses = await asyncio.gather(
            *(
                api.post(
                    user, "/v1/conversations", json={"type": "direct", "member_ids": [other.id]}
                )
                for user, other in [(alice, bob), (bob, alice)] * 3
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 5 + [201], [r.text for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
        assert stored()["conversations"] == before + 1


async def test_concurrent_sends_to_many_conversations_are_each_gapless(api: ChatApi) -> None:
    users = await api.register_many(6)
    hub = users[0]
    conversations = [(await api.direct(hub, other))["id"] for other in users[1:]]

    async def chat(cid: str, other: User) -> None:
        results = await asyncio.gather(
            *(api.send(hub if i % 2 else other, cid, f"{i}") for i in range(12))
        )
        assert {r.status_code for r in results} == {201}

    await asyncio.gather(*(chat(cid, u) for cid, u in zip(conversations, users[1:], strict=True)))
    for cid in conversations:
        assert [m["seq"] for m in await api.all_messages(hub, cid)] == list(range(1, 13))
