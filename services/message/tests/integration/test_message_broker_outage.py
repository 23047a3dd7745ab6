"""RabbitMQ down: REST still stores messages, and their events go out once it is back.

The shared broker must not be disturbed, so this test runs a private RabbitMQ
node of its own (own node name, ports, data and log directories, no plugins)
and stops and restarts that node for real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from message_support import UNLIMITED_RATES, EventTap
from pymongo import MongoClient

from chat_testkit import ServiceProcess
from chat_testkit.api import ChatApi
from chat_testkit.private import PrivateRabbitMQ

pytestmark = pytest.mark.slow

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15) as client:
        yield client


async def wait_ready_state(http: httpx.AsyncClient, service: ServiceProcess, status: int) -> Any:
    deadline = time.monotonic() + 30
    while True:
        response = await http.get(f"{service.url}/readyz")
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


async def test_sends_succeed_while_the_broker_is_down_and_events_follow(
    private_rabbitmq: PrivateRabbitMQ,
    start_service: Callable[..., ServiceProcess],
    service_env: dict[str, str],
    http: httpx.AsyncClient,
) -> None:
    rabbit = private_rabbitmq
    auth = start_service("chat-auth", AMQP_URL=rabbit.url)
    message = start_service(
        "chat-message", AMQP_URL=rabbit.url, AUTH_URL=auth.url, **UNLIMITED_RATES
    )
    # Durable: the queue and its binding outlive the broker's restart, so nothing the
    # service publishes after it comes back can miss the test, however soon that is.
    tap = await EventTap.open(rabbit.url, f"{service_env['NAMESPACE']}.events", durable=True)
    try:
        api = ChatApi(http, auth_url=auth.url, message_url=message.url)
        alice, bob = await api.register_many(2)
        cid = (await api.group(alice, [bob], title="outage"))["id"]
        before = [await api.sent(alice, cid, f"before {i}") for i in range(3)]
        await tap.wait_for(lambda e: e["type"] == "message.created", count=3)

        await tap.close()
        await asyncio.to_thread(rabbit.stop)
        not_ready = await wait_ready_state(http, message, 503)
        assert not_ready.status_code == 503
        assert "rabbitmq" in not_ready.text

        # Everything over REST still works: the writes are stored, their events staged.
        # (Alice last sent seq 12, so reading 13 moves her cursor and makes a receipt.)
        during = [await api.sent(u, cid, f"during {i}") for i, u in enumerate([alice, bob] * 5)]
        assert [m["seq"] for m in during] == list(range(4, 14))
        path = f"/v1/conversations/{cid}/messages/{before[0]['id']}"
        edited = await api.patch(alice, path, json={"text": "edited during"})
        assert edited.status_code == 200
        deleted = await api.delete(alice, f"/v1/conversations/{cid}/messages/{before[1]['id']}")
        assert deleted.status_code == 204
        assert (
            await api.post(alice, f"/v1/conversations/{cid}/read", json={"seq": 13})
        ).status_code == 204
        other = await api.group(bob, [alice], title="made during the outage")

        await asyncio.to_thread(rabbit.start)
        await tap.attach(rabbit.url)
        assert (await wait_ready_state(http, message, 200)).status_code == 200

        # Every stored message's event arrives, and so does every other change.
        def created_in(conversation: str) -> Callable[[dict[str, Any]], bool]:
            return lambda e: (
                e["type"] == "message.created"
                and e["data"]["message"]["conversation_id"] == conversation
            )

        stored = await api.all_messages(alice, cid)
        assert [m["seq"] for m in stored] == list(range(1, 14))
        stored_ids = {m["id"] for m in stored}
        try:
            created = await tap.wait_for_keys(
                created_in(cid), lambda e: e["data"]["message"]["id"], stored_ids, timeout=45
            )
        except AssertionError as exc:
            # Say which side failed: events still staged (the service) or lost on the way.
            client: MongoClient[dict[str, Any]] = MongoClient(service_env["MONGODB_URL"])
            staged = client[service_env["MONGODB_DB"]]["outbox"].count_documents({})
            client.close()
            raise AssertionError(f"{exc}; the service's outbox still holds {staged}") from None
        assert created == stored_ids

        updated = await tap.wait_for(lambda e: e["type"] == "message.updated", timeout=15)
        assert updated[0]["data"]["message"]["text"] == "edited during"
        gone = await tap.wait_for(lambda e: e["type"] == "message.deleted", timeout=15)
        assert gone[0]["data"]["message"]["id"] == before[1]["id"]
        receipt = await tap.wait_for(
            lambda e: e["type"] == "receipt.updated" and e["data"]["kind"] == "read", timeout=15
        )
        assert (receipt[0]["data"]["user_id"], receipt[0]["data"]["seq"]) == (alice.id, 13)
        await tap.wait_for(
            lambda e: (
                e["type"] == "conversation.updated"
                and e["data"]["conversation"]["id"] == other["id"]
            ),
            timeout=15,
        )

        # And the service is back to publishing at once.
        after = await api.sent(bob, cid, "after")
        await tap.wait_for(
            lambda e: created_in(cid)(e) and e["data"]["message"]["id"] == after["id"]
        )
    finally:
        await tap.close()
