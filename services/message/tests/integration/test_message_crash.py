"""chat-message killed (SIGKILL) or stopped (SIGTERM) under load: nothing acknowledged is lost.

Clients send continuously, each retrying a failed send with the same
`client_msg_id` until it is acknowledged; the service dies and comes back on
the same port. What the clients saw must then hold: every acknowledged
message is stored once, seqs are gapless, and every stored message's
`message.created` event is published (by the outbox relay, for events staged
before the crash).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from message_support import UNLIMITED_RATES, EventTap

from chat_testkit import ServiceProcess
from chat_testkit.api import ChatApi, User, new_client_msg_id
from chat_testkit.process import log_problems

pytestmark = pytest.mark.slow

SENDERS = 8


@dataclass
class Traffic:
    acked: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    failures: int = 0
    # Set when the service is back: the first acknowledgement after that is timed.
    restarted_at: float | None = None
    resumed: asyncio.Event = field(default_factory=asyncio.Event)
    resumed_in: float = float("inf")

    def record(self, key: tuple[str, str], message: dict[str, Any]) -> None:
        self.acked[key] = message
        if self.restarted_at is not None and not self.resumed.is_set():
            self.resumed_in = time.monotonic() - self.restarted_at
            self.resumed.set()


@dataclass
class Stack:
    auth: ServiceProcess
    message: ServiceProcess
    api: ChatApi
    tap: EventTap


@pytest_asyncio.fixture
async def stack(
    start_service: Callable[..., ServiceProcess], service_env: dict[str, str]
) -> AsyncIterator[Stack]:
    auth = start_service("chat-auth")
    message = start_service("chat-message", AUTH_URL=auth.url, **UNLIMITED_RATES)
    tap = await EventTap.open(service_env["AMQP_URL"], f"{service_env['NAMESPACE']}.events")
    # Short timeouts: a send to a dead process must fail fast and be retried.
    timeout = httpx.Timeout(5, connect=1)
    limits = httpx.Limits(max_connections=SENDERS * 2, max_keepalive_connections=SENDERS * 2)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        yield Stack(auth, message, ChatApi(http, auth_url=auth.url, message_url=message.url), tap)
    await tap.close()


async def send_until_stopped(
    api: ChatApi, user: User, cid: str, traffic: Traffic, stop: asyncio.Event
) -> None:
    """Send one message after another; a failed send is retried with its key until acknowledged."""
    while not stop.is_set():
        key = new_client_msg_id()
        while True:
            try:
                response = await api.send(user, cid, f"{user.username} {key}", client_msg_id=key)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code in (200, 201):
                traffic.record((user.id, key), response.json())
                break
            if response is not None:
                assert response.status_code == 503, response.text  # unavailable: retry
            traffic.failures += 1
            await asyncio.sleep(0.05)


async def run_through(
    stack: Stack, users: list[User], cid: str, fault: Callable[[], Awaitable[None]]
) -> Traffic:
    traffic = Traffic()
    stop = asyncio.Event()
    senders = [
        asyncio.create_task(send_until_stopped(stack.api, u, cid, traffic, stop)) for u in users
    ]
    await asyncio.sleep(1.5)
    acked_before_fault = len(traffic.acked)
    assert acked_before_fault > 0
    await fault()
    traffic.restarted_at = time.monotonic()
    await asyncio.wait_for(traffic.resumed.wait(), 90)
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*senders), 60)
    return traffic


async def assert_nothing_acknowledged_was_lost(
    stack: Stack, reader: User, cid: str, traffic: Traffic
) -> None:
    stored = await stack.api.all_messages(reader, cid)
    n = len(stored)
    assert [m["seq"] for m in stored] == list(range(1, n + 1))
    assert (await stack.api.conversation(reader, cid))["last_seq"] == n
    by_key = {(m["sender_id"], m["client_msg_id"]): m for m in stored}
    assert len(by_key) == n  # no (sender, key) stored twice
    # Every acknowledged message is stored exactly as it was acknowledged. Every send was
    # retried until acknowledged, so nothing else is stored either.
    assert {k: by_key.get(k) for k in traffic.acked} == traffic.acked
    assert set(by_key) == set(traffic.acked)

    # Every stored message's `message.created` reaches the exchange, duplicates aside.
    stored_ids = {m["id"] for m in stored}
    created = await stack.tap.wait_for_keys(
        lambda e: e["type"] == "message.created" and e["data"]["message"]["conversation_id"] == cid,
        lambda e: e["data"]["message"]["id"],
        stored_ids,
        timeout=30,
    )
    assert created == stored_ids


async def group_of_senders(stack: Stack) -> tuple[list[User], str]:
    users = await stack.api.register_many(SENDERS)
    cid = (await stack.api.group(users[0], users[1:], title="under fire"))["id"]
    return users, cid


async def test_sigkill_mid_traffic_loses_no_acknowledged_message(stack: Stack) -> None:
    users, cid = await group_of_senders(stack)

    async def kill_and_restart() -> None:
        stack.message.kill()
        await asyncio.sleep(0.3)
        await asyncio.to_thread(stack.message.start)

    traffic = await run_through(stack, users, cid, kill_and_restart)
    assert traffic.failures > 0  # the kill really cut sends off
    # The dead process's open transaction is aborted by the new one within seconds, not
    # left to block the conversation until the server reaps it a minute later.
    assert traffic.resumed_in < 12
    assert not log_problems(stack.message.log_text())
    await assert_nothing_acknowledged_was_lost(stack, users[0], cid, traffic)


async def test_sigterm_drains_promptly_and_loses_nothing(stack: Stack) -> None:
    users, cid = await group_of_senders(stack)
    stopped: dict[str, float | int | None] = {}

    async def stop_and_restart() -> None:
        started = time.monotonic()
        stopped["code"] = await asyncio.to_thread(stack.message.stop, 20)
        stopped["seconds"] = time.monotonic() - started
        await asyncio.to_thread(stack.message.start)

    log_offset = len(stack.message.log_text())
    traffic = await run_through(stack, users, cid, stop_and_restart)
    # A graceful exit (uvicorn re-raises the SIGTERM it handled), well within the graceful
    # timeout: the writers stop once drained instead of being killed when it runs out.
    assert stopped["code"] in (0, -signal.SIGTERM)
    assert isinstance(stopped["seconds"], float)
    assert stopped["seconds"] < 10
    assert not log_problems(stack.message.log_text()[log_offset:])
    assert traffic.resumed_in < 5
    await assert_nothing_acknowledged_was_lost(stack, users[0], cid, traffic)
