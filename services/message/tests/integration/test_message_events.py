"""Events on the `{namespace}.events` exchange, seen from a queue of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio
from message_support import ENVELOPE_KEYS, EventTap

from chat_contracts import Envelope, MessageCreated
from chat_testkit import ServiceProcess
from chat_testkit.api import ChatApi

pytestmark = pytest.mark.usefixtures("service_log_clean")


@pytest_asyncio.fixture
async def tap(
    module_service_env: dict[str, str], message_service: ServiceProcess
) -> AsyncIterator[EventTap]:
    env = module_service_env
    tap = await EventTap.open(env["AMQP_URL"], f"{env['NAMESPACE']}.events")
    yield tap
    await tap.close()


def assert_envelope(envelope: dict[str, Any], event_type: str) -> dict[str, Any]:
    """The contract's envelope, parseable by the shared contracts module; returns `data`."""
    assert set(envelope) == ENVELOPE_KEYS
    assert envelope["type"] == event_type
    assert (envelope["version"], envelope["producer"]) == (1, "message")
    assert isinstance(envelope["id"], str)
    assert envelope["id"]
    assert datetime.fromisoformat(envelope["occurred_at"]).utcoffset() is not None
    Envelope.model_validate(envelope).unwrap()
    return dict(envelope["data"])


def about(conversation_id: str, event_type: str) -> Any:
    def match(envelope: dict[str, Any]) -> bool:
        data = envelope["data"]
        found = data.get("conversation", data.get("message", data))
        cid = found.get("conversation_id", found.get("id"))
        return bool(envelope["type"] == event_type and cid == conversation_id)

    return match


async def test_conversation_changes_are_published(api: ChatApi, tap: EventTap) -> None:
    owner, bob, carol = await api.register_many(3)
    group = await api.group(owner, [bob], title="news")
    created = await tap.wait_for(about(group["id"], "conversation.updated"))
    data = assert_envelope(created[0], "conversation.updated")
    assert data["conversation"]["id"] == group["id"]
    assert data["conversation"]["title"] == "news"
    assert data["conversation"]["member_ids"] == [owner.id, bob.id]
    assert data["removed_member_ids"] == []

    await api.post(owner, f"/v1/conversations/{group['id']}/members", json={"user_ids": [carol.id]})
    await api.delete(owner, f"/v1/conversations/{group['id']}/members/{bob.id}")
    events = await tap.wait_for(about(group["id"], "conversation.updated"), count=3)
    added, removed = (assert_envelope(e, "conversation.updated") for e in events[1:])
    assert added["conversation"]["member_ids"] == [owner.id, bob.id, carol.id]
    assert removed["conversation"]["member_ids"] == [owner.id, carol.id]
    assert removed["removed_member_ids"] == [bob.id]

    direct = await api.direct(bob, carol)
    event = (await tap.wait_for(about(direct["id"], "conversation.updated")))[0]
    assert sorted(assert_envelope(event, "conversation.updated")["conversation"]["member_ids"]) == (
        sorted([bob.id, carol.id])
    )


async def test_message_changes_are_published(api: ChatApi, tap: EventTap) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    message = await api.sent(alice, cid, "first")

    created = (await tap.wait_for(about(cid, "message.created")))[0]
    data = assert_envelope(created, "message.created")
    assert data["message"] == message
    assert sorted(data["member_ids"]) == sorted([alice.id, bob.id])
    typed = Envelope.model_validate(created).unwrap()
    assert isinstance(typed, MessageCreated)
    assert typed.message.seq == 1

    path = f"/v1/conversations/{cid}/messages/{message['id']}"
    edited = (await api.patch(alice, path, json={"text": "first!"})).json()
    await api.delete(alice, path)

    updated = assert_envelope(
        (await tap.wait_for(about(cid, "message.updated")))[0], "message.updated"
    )
    assert updated["message"] == edited
    assert updated["message"]["text"] == "first!"
    deleted = assert_envelope(
        (await tap.wait_for(about(cid, "message.deleted")))[0], "message.deleted"
    )
    assert deleted["message"]["id"] == message["id"]
    assert (deleted["message"]["deleted"], deleted["message"]["text"]) == (True, None)
    assert sorted(deleted["member_ids"]) == sorted([alice.id, bob.id])


async def test_every_message_gets_its_own_created_event(api: ChatApi, tap: EventTap) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.group(alice, [bob]))["id"]
    sent = [await api.sent(alice if i % 2 else bob, cid, f"m{i}") for i in range(10)]
    events = await tap.wait_for(about(cid, "message.created"), count=10)
    assert len({e["id"] for e in events}) == 10
    by_seq = {e["data"]["message"]["seq"]: e["data"]["message"] for e in events}
    assert by_seq == {m["seq"]: m for m in sent}


async def test_read_receipts_are_published_when_the_cursor_moves(
    api: ChatApi, tap: EventTap
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    for _ in range(3):
        await api.sent(alice, cid)

    def bobs_reads(envelope: dict[str, Any]) -> bool:
        data = envelope["data"]
        return bool(
            envelope["type"] == "receipt.updated"
            and data["conversation_id"] == cid
            and data["user_id"] == bob.id
            and data["kind"] == "read"
        )

    await api.post(bob, f"/v1/conversations/{cid}/read", json={"seq": 2})
    receipt = assert_envelope((await tap.wait_for(bobs_reads))[0], "receipt.updated")
    assert (receipt["seq"], sorted(receipt["member_ids"])) == (2, sorted([alice.id, bob.id]))

    # A move backwards is a no-op and publishes nothing; the next real move does.
    await api.post(bob, f"/v1/conversations/{cid}/read", json={"seq": 1})
    await api.post(bob, f"/v1/conversations/{cid}/read", json={"seq": 3})
    receipts = await tap.wait_for(bobs_reads, count=2)
    assert [r["data"]["seq"] for r in receipts] == [2, 3]
    assert [r["data"]["seq"] for r in tap.envelopes if bobs_reads(r)] == [2, 3]
