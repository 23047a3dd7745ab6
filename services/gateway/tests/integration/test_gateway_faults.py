"""Faults: a gateway killed, Redis restarted, a gateway drained under load.

Each test runs a stack of its own, since it kills part of it, and asserts on
what clients saw and what the database holds, not on internals.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
import socketio
from gateway_support import FAST_GATEWAY_ENV, Device, LogWatch

from chat_testkit import ServiceProcess
from chat_testkit.api import ChatApi, User, new_client_msg_id
from chat_testkit.private import PrivateRedis
from chat_testkit.stack import Stack
from chat_testkit.stored import Stored

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def ready_status(http: httpx.AsyncClient, process: ServiceProcess) -> int:
    try:
        return (await http.get(f"{process.url}/readyz", timeout=2)).status_code
    except httpx.HTTPError:
        return 0


async def wait_until(
    condition: Callable[[], Any], timeout: float, message: str, interval: float = 0.1
) -> float:
    """Poll `condition` (awaited if need be) until truthy; the seconds it took."""
    started = time.monotonic()
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{message} within {timeout} s")
        await asyncio.sleep(interval)


def contiguous_max(seqs: set[int]) -> int:
    """The highest seq held with nothing missing below it: the cursor a client syncs from."""
    held = 0
    while held + 1 in seqs:
        held += 1
    return held


@dataclass
class Sender:
    """Sends `text-i` messages one after another, failing over to the next gateway.

    On a disconnect it connects to the next URL that takes it, and sends the
    unacknowledged message again with the same client_msg_id, as a real client
    does; so every message it started is eventually acknowledged once.
    """

    user: User
    conversation_id: str
    urls: list[str]
    label: str
    acked: list[dict[str, Any]] = field(default_factory=list)
    client_msg_ids: list[str] = field(default_factory=list)
    failovers: int = 0
    retries: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    sio: socketio.AsyncClient | None = None
    _lost: asyncio.Event = field(default_factory=asyncio.Event)

    async def _connect(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            for url in self.urls:
                sio = socketio.AsyncClient(reconnection=False)
                sio.on("disconnect", self._on_disconnect)
                try:
                    await sio.connect(
                        url,
                        auth={"token": self.user.token},
                        transports=["websocket"],
                        wait_timeout=5,
                    )
                except socketio.exceptions.ConnectionError:
                    await sio.shutdown()
                    continue
                self.sio = sio
                self._lost.clear()
                return
            assert time.monotonic() < deadline, f"{self.label}: no gateway takes connections"
            await asyncio.sleep(0.2)

    async def _on_disconnect(self, reason: Any = None) -> None:
        self._lost.set()

    async def _call(self, payload: dict[str, Any]) -> Any:
        """The ack, or None if the connection went away before it came."""
        assert self.sio is not None
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_ack(*args: Any) -> None:
            if not answer.done():
                answer.set_result(args[0] if args else None)

        try:
            await self.sio.emit("message:send", payload, callback=on_ack)
        except socketio.exceptions.SocketIOError:
            return None
        lost = asyncio.ensure_future(self._lost.wait())
        await asyncio.wait({answer, lost}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        lost.cancel()
        return answer.result() if answer.done() else None

    async def run(self, count: int, pause: float = 0.01) -> None:
        await self._connect()
        for i in range(count):
            if self.stop.is_set():
                return
            payload = {
                "conversation_id": self.conversation_id,
                "client_msg_id": new_client_msg_id(),
                "text": f"{self.label}-{i}",
            }
            self.client_msg_ids.append(payload["client_msg_id"])
            while True:
                if self._lost.is_set() or self.sio is None or not self.sio.connected:
                    if self.sio is not None:
                        await self.sio.shutdown()
                    self.failovers += 1
                    await self._connect()
                ack = await self._call(payload)
                if isinstance(ack, dict) and ack.get("ok"):
                    self.acked.append(ack["message"])
                    break
                # No answer (connection lost) or `unavailable` while shutting down: retry.
                assert ack is None or ack["error"]["code"] == "unavailable", ack
                self.retries += 1
                await asyncio.sleep(0.05)
            await asyncio.sleep(pause)

    async def close(self) -> None:
        if self.sio is not None:
            await self.sio.shutdown()


# --- (a) a gateway killed ------------------------------------------------------------------------


async def test_clients_of_a_killed_gateway_resync_elsewhere_and_go_offline_in_time(
    start_stack: Callable[..., Stack],
    http: httpx.AsyncClient,
) -> None:
    ttl, renew = 6, 2
    stack = start_stack(
        extra={
            "gateway": {
                **FAST_GATEWAY_ENV,
                "PRESENCE_TTL_SECONDS": str(ttl),
                "PRESENCE_RENEW_SECONDS": str(renew),
            }
        }
    )
    doomed, survivor = stack.gateways
    watch = LogWatch([stack.auth, stack.message, survivor]).mark()
    api = ChatApi(http, auth_url=stack.auth.url, message_url=stack.message.url)
    alice, bob, dave = await api.register_many(3)
    cid = (await api.direct(alice, bob))["id"]
    # Dave shows his presence to Alice once he has written to her (CONTRACT §7.5).
    await api.sent(dave, (await api.direct(alice, dave))["id"], "hi")

    a1 = await Device(alice, "alice@survivor").connect(survivor.url)
    b1 = await Device(bob, "bob@doomed").connect(doomed.url)
    d1 = await Device(dave, "dave@doomed").connect(doomed.url)
    sender = Sender(alice, cid, [survivor.url], "a")
    try:
        await a1.wait_for("presence", lambda p: p["user_id"] == dave.id and p["online"])
        sending = asyncio.create_task(sender.run(150, pause=0.02))
        await b1.wait_for("message:new", count=10)

        doomed.kill()
        killed_at = time.monotonic()
        await b1.wait_disconnected(timeout=10)
        await d1.wait_disconnected(timeout=10)
        held = {m["seq"]: m for m in b1.of("message:new")}
        cursor = contiguous_max(set(held))

        # Bob's app reconnects to the other gateway and syncs; Dave's stays away.
        b1_seen_before = len(b1.received)
        await b1.connect(survivor.url)
        synced = (await b1.sync({cid: cursor}))["conversations"]
        (entry,) = [e for e in synced if e["conversation"]["id"] == cid]
        synced_seqs = [m["seq"] for m in entry["messages"]]
        assert synced_seqs == list(range(cursor + 1, cursor + 1 + len(synced_seqs))), synced_seqs
        assert synced_seqs, "nothing was sent while Bob was away"

        # Dave goes offline for his contacts, without any disconnect having been seen.
        await a1.wait_for(
            "presence", lambda p: p["user_id"] == dave.id and not p["online"], timeout=60
        )
        offline_after = time.monotonic() - killed_at
        assert offline_after <= ttl + 5 + renew + 3, offline_after
        query = await a1.ok("presence:query", {"user_ids": [dave.id]})
        assert query["presence"][dave.id]["online"] is False
        assert query["presence"][dave.id]["last_seen"]
        # Bob, back on the survivor, is online (asked by himself: he never wrote to Alice).
        query = await b1.ok("presence:query", {"user_ids": [bob.id]})
        assert query["presence"][bob.id]["online"] is True

        # Dave comes back: online again.
        await d1.connect(survivor.url)
        await a1.wait_for(
            "presence", lambda p: p["user_id"] == dave.id and p["online"], count=2, timeout=10
        )

        await sending
        total = len(sender.acked)
        assert total == 150
        assert max(m["seq"] for m in sender.acked) == total
        # Bob's screen: what he held, what sync gave, what arrived live since: everything once.
        live = [m for name, m in b1.received[b1_seen_before:] if name == "message:new"]
        screen = {m["id"]: m for m in [*held.values(), *entry["messages"], *live]}
        assert sorted(m["seq"] for m in screen.values()) == list(range(1, total + 1))
        assert {m["id"] for m in screen.values()} == {m["id"] for m in sender.acked}
        # A survivor's device missed nothing live either.
        await a1.wait_for("message:new", lambda m: m["conversation_id"] == cid, count=total)
    finally:
        sender.stop.set()
        await sender.close()
        for device in (a1, b1, d1):
            await device.close()
    problems = watch.problems(errors_too=False)
    assert not problems, "\n".join(problems)


# --- (b) Redis restarted -------------------------------------------------------------------------


async def test_delivery_resumes_after_redis_restarts_without_restarting_gateways(
    start_stack: Callable[..., Stack],
    http: httpx.AsyncClient,
    private_redis: PrivateRedis,
) -> None:
    stack = start_stack(
        extra={
            "gateway": {
                **FAST_GATEWAY_ENV,
                "REDIS_URL": private_redis.url,
                "HEARTBEAT_SECONDS": "0.5",
                "HEARTBEAT_STALE_SECONDS": "3",
                "PRESENCE_RENEW_SECONDS": "1",
            }
        }
    )
    gw1, gw2 = stack.gateways
    watch = LogWatch([stack.auth, stack.message]).mark()
    api = ChatApi(http, auth_url=stack.auth.url, message_url=stack.message.url)
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    a1 = await Device(alice, "alice@gw1").connect(gw1.url)
    b1 = await Device(bob, "bob@gw2").connect(gw2.url)
    try:
        first = await a1.send(cid, "before the restart")
        await b1.wait_for("message:new", lambda m: m["id"] == first["id"])

        private_redis.kill()
        # Both gateways notice: not ready, naming Redis.
        for gateway in (gw1, gw2):
            await wait_until(
                functools.partial(_failing_redis, http, gateway),
                timeout=15,
                message=f"gateway {gateway.port} still ready without Redis",
            )
        private_redis.start()

        # Without restarting a gateway: both ready again, and Alice reaches Bob across them.
        for gateway in (gw1, gw2):
            await wait_until(
                functools.partial(_ready, http, gateway),
                timeout=30,
                message=f"gateway {gateway.port} not ready after Redis came back",
            )
        # Whatever was published while they were cut off, each gateway tells its sockets.
        for device in (a1, b1):
            (required,) = await device.wait_for("sync:required", timeout=15)
            assert required == {"reason": "redis_reconnected"}
        # Redis pub/sub keeps nothing for a subscriber that is still reconnecting: poll with
        # bursts each way until one arrives whole on both sides. Consecutive events go to
        # both gateways' consumers in turn, so a burst needs each instance's emits to reach
        # the other.
        rounds = 0

        async def a_burst_arrives_whole() -> bool:
            nonlocal rounds
            rounds += 1
            burst = [await a1.send(cid, f"round {rounds} a{i}") for i in range(3)]
            burst += [await b1.send(cid, f"round {rounds} b{i}") for i in range(3)]
            ids = {m["id"] for m in burst}
            await asyncio.sleep(1.0)
            return all(
                len(device.of("message:new", lambda m: m["id"] in ids)) == len(ids)
                for device in (a1, b1)
            )

        await wait_until(a_burst_arrives_whole, timeout=30, message="no delivery across gateways")

        # Presence lived in Redis: Bob, connected all along, reads online again.
        await wait_until(
            lambda: _presence_online(a1, bob.id),
            timeout=10,
            message="Bob, connected all along, does not read online after the restart",
        )
    finally:
        await a1.close()
        await b1.close()
    problems = watch.problems(errors_too=False)
    assert not problems, "\n".join(problems)
    # Through the outage, no client event failed as an internal error.
    for gateway in (gw1, gw2):
        crashed = [
            line
            for line in gateway.log_text().splitlines()
            if '"logger": "chat_gateway.dispatch"' in line and "event handler failed" in line
        ]
        assert not crashed, crashed


async def _ready(http: httpx.AsyncClient, gateway: ServiceProcess) -> bool:
    return await ready_status(http, gateway) == 200


async def _failing_redis(http: httpx.AsyncClient, gateway: ServiceProcess) -> bool:
    response = await http.get(f"{gateway.url}/readyz", timeout=5)
    if response.status_code != 503:
        return False
    failing = response.json()["error"]["details"]["failing"]
    return any(name.startswith("redis") for name in failing)


async def _presence_online(device: Device, user_id: str) -> bool:
    query = await device.ok("presence:query", {"user_ids": [user_id]})
    return bool(query["presence"][user_id]["online"])


# --- (c) a gateway drained under load ------------------------------------------------------------


async def test_a_drained_gateway_moves_its_clients_without_losing_acknowledged_messages(
    start_stack: Callable[..., Stack],
    service_env: dict[str, str],
    http: httpx.AsyncClient,
) -> None:
    drain_seconds = 2
    stack = start_stack(
        extra={"gateway": {**FAST_GATEWAY_ENV, "DRAIN_SECONDS": str(drain_seconds)}}
    )
    draining, survivor = stack.gateways
    watch = LogWatch([stack.auth, stack.message, survivor]).mark()
    api = ChatApi(http, auth_url=stack.auth.url, message_url=stack.message.url)
    *writers, reader = await api.register_many(4)
    cid = (await api.group(reader, writers))["id"]
    per_sender = 60
    # Each sender starts on the gateway about to drain and fails over to the other.
    senders = [
        Sender(user, cid, [draining.url, survivor.url], f"s{n}") for n, user in enumerate(writers)
    ]
    r1 = await Device(reader, "reader@survivor").connect(survivor.url)
    tasks = [asyncio.create_task(s.run(per_sender, pause=0.02)) for s in senders]
    try:
        await wait_until(
            lambda: all(len(s.acked) >= 5 for s in senders), timeout=15, message="no traffic"
        )
        assert all(s.sio is not None and s.sio.connection_url == draining.url for s in senders)
        assert draining.process is not None
        draining.process.send_signal(signal.SIGTERM)

        async def draining_answers_503() -> bool:
            response = await http.get(f"{draining.url}/readyz", timeout=2)
            return response.status_code == 503 and "draining" in response.text

        await wait_until(
            draining_answers_503, timeout=drain_seconds, message="no 503 while draining"
        )
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        exit_code = await asyncio.to_thread(draining.process.wait, 30)
        assert exit_code == 0, draining.log_text()[-2000:]

        for sender in senders:
            assert sender.failovers >= 1, f"{sender.label} was never moved"
            assert sender.sio is not None
            assert sender.sio.connection_url == survivor.url
            assert len(sender.acked) == per_sender
            assert [m["client_msg_id"] for m in sender.acked] == sender.client_msg_ids

        # Nothing acknowledged is lost, nothing is stored twice, seq has no hole.
        acked = {m["id"]: m for s in senders for m in s.acked}
        assert len(acked) == per_sender * len(senders)
        history = await api.all_messages(reader, cid)
        assert [m["seq"] for m in history] == list(range(1, len(acked) + 1))
        assert {m["id"]: m["seq"] for m in history} == {i: m["seq"] for i, m in acked.items()}
        assert sorted(m["client_msg_id"] for m in history) == sorted(
            i for s in senders for i in s.client_msg_ids
        )
        stored = Stored(service_env["MONGODB_URL"], service_env["MONGODB_DB"])
        try:
            assert stored.messages(conversation_id=cid) == len(acked)
        finally:
            stored.close()
        # And the reader, on the other gateway all along, saw every one of them live.
        await r1.wait_for("message:new", lambda m: m["conversation_id"] == cid, count=len(acked))
    finally:
        for task in tasks:
            task.cancel()
        for sender in senders:
            await sender.close()
        await r1.close()
    assert "Traceback" not in draining.log_text()
    problems = watch.problems(errors_too=False)
    assert not problems, "\n".join(problems)
