"""A load generator process: its share of the devices, its share of the send schedule.

Open loop: message j of the scenario is due at t0 + j / rate whatever happened
to the ones before it; worker w sends the j with j % workers == w. Each send
records how late it went out (send lag: the generator's own lateness), its
acknowledgement latency and, on every other device that gets `message:new`,
the end-to-end latency. Both latencies are measured from the time the message
was *due*, so a slow server shows up as latency and cannot lower the load.
The due time travels in the message text, so any process can compute the
delivery latency (processes on one machine share its clock).

A device that loses its connection reconnects (to the next gateway of its
list, after a random delay) and calls `sync` with the last seq it holds per
conversation, as an app does; sends due meanwhile wait in its outbox and are
sent again with the same client_msg_id, so the server can deduplicate them.
Refusals and timeouts are retried as CONTRACT §7.1 asks (see `Device`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from .client import ConnectFailed, SocketClient
from .histogram import Histogram
from .plan import DeviceFate, DeviceSpec, WorkerPlan, WorkerResult

# How a device came to hold a seq.
LIVE, SYNCED, OWN = 1, 2, 3
SYNC_PAGES_MAX = 100
# CONTRACT §7.1: `unavailable` (and `rate_limited`) mean nothing was done, retry after
# `retry_after`; `timeout` means the outcome is unknown, retry with the same client_msg_id.
# No answer at all within the client's own deadline is treated as a timeout.
RETRY_AFTER = frozenset({"unavailable", "rate_limited"})
RETRY_SOON = frozenset({"timeout", "no_answer"})
# A timed-out send is tried again after this, doubled at each attempt (as the web client
# does), up to the cap.
TIMEOUT_RETRY_S = 1.0
TIMEOUT_RETRY_MAX_S = 8.0
# Sends waiting in an outbox (after a pause or a reconnect) go this many at a time, each
# next one when one is accepted, as an app's outbox does; fresh sends go at once.
BACKLOG_IN_FLIGHT = 1
# A live message past a hole waits this long for the hole to fill (an own send whose
# acknowledgement is still on its way leaves one) before the device syncs.
GAP_GRACE_S = 1.0


class Pending:
    __slots__ = ("attempts", "client_msg_id", "conv", "due", "kind", "payload", "sent_at")

    def __init__(
        self, kind: str, due: float, conv: int, client_msg_id: str, payload: dict[str, Any]
    ) -> None:
        self.kind = kind
        self.due = due
        self.conv = conv
        self.client_msg_id = client_msg_id
        self.payload = payload
        self.sent_at = 0.0
        self.attempts = 0


def _retry_after(body: dict[str, Any]) -> float | None:
    details = (body.get("error") or {}).get("details") or {}
    value = details.get("retry_after") if isinstance(details, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


class Device:
    """One device of one user: a connection, what it holds, what it still has to send.

    It behaves as the contract asks an app to: it syncs after every (re)connection,
    when a live message shows a hole that does not fill, and when the gateway emits
    `sync:required`, calling again with its new cursors until the answer is complete;
    it retries refused and timed-out requests, sends with the same client_msg_id.

    A refused or timed-out send holds the device's whole outbox back: its sends
    wait until the pause is over, then go one at a time, oldest first, each when
    the one before was accepted; once the outbox is empty sends go out at once
    again. A client that kept sending into a refusing server, or sent its whole
    backlog in one burst, would multiply the load it was refused for.
    """

    def __init__(self, gen: Generator, spec: DeviceSpec) -> None:
        self.gen = gen
        self.spec = spec
        self.index = spec.index
        self.convs = gen.plan.user_convs.get(spec.user, [])
        self.client: SocketClient | None = None
        self.gateway = 0
        self.pending: dict[int, Pending] = {}
        self.outbox: list[Pending] = []  # sends waiting: for a connection, or out a pause
        self.paused_until = 0.0
        self.flush_due = False
        self.held: dict[int, dict[int, int]] = {c: {} for c in self.convs}
        # When each held seq arrived (live or by sync), for runs that judge delivery times.
        self.arrived: dict[int, dict[int, float]] | None = (
            {c: {} for c in self.convs} if gen.plan.record_arrivals else None
        )
        self.maxseen: dict[int, int] = {c: gen.plan.conv_base[c] for c in self.convs}
        self.contig: dict[int, int] = {c: gen.plan.conv_base[c] for c in self.convs}
        self.top: dict[int, int] = {c: gen.plan.conv_base[c] for c in self.convs}
        self.fate: DeviceFate | None = None
        self.sync_pages = 0
        self.syncing = False
        self.sync_again = False
        self.since: str | None = None
        self.sync_soon = False
        self.gap_check = False
        self.reconnecting = False

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    # --- connection ---------------------------------------------------------------------------

    async def connect(self) -> bool:
        url = self.spec.gateways[self.gateway]
        client = SocketClient(url, self.spec.token, self.on_event, self.on_ack, self.on_close)
        await client.open(self.gen.plan.connect_timeout)
        self.client = client
        return True

    def on_close(self, client: SocketClient) -> None:
        if client is not self.client or self.gen.finishing or self.gen.dropped:
            return
        gen = self.gen
        now = time.time()
        gen.count("disconnects")
        self.fate = DeviceFate(self.index, now, None, None, client.url)
        gen.fates.append(self.fate)
        # Sends in flight may or may not have been stored: send them again after reconnecting,
        # with the same client_msg_id, and the server returns the stored one if it was.
        for pending in self.pending.values():
            if pending.kind == "send":
                gen.count("unanswered_on_close")
                self.outbox.append(pending)
        self.pending.clear()
        # A sync cut short starts over after the reconnect.
        self.syncing = self.sync_again = False
        gen.busy.discard(self)
        self.schedule_reconnect(first=True)

    def schedule_reconnect(self, first: bool) -> None:
        if self.reconnecting or self.gen.finishing:
            return
        self.reconnecting = True
        jitter = self.gen.plan.reconnect_jitter
        delay = self.gen.rng.uniform(0, jitter) if first else 0.5 + self.gen.rng.uniform(0, 0.5)
        asyncio.get_running_loop().call_later(delay, self._reconnect_now)

    def _reconnect_now(self) -> None:
        task = asyncio.ensure_future(self.reconnect())
        self.gen.tasks.add(task)
        task.add_done_callback(self.gen.tasks.discard)

    async def reconnect(self) -> None:
        gen = self.gen
        self.gateway = (self.gateway + 1) % len(self.spec.gateways)
        try:
            await self.connect()
        except ConnectFailed as exc:
            gen.error(f"reconnect:{exc.code}")
            self.reconnecting = False
            self.schedule_reconnect(first=False)
            return
        self.reconnecting = False
        gen.count("reconnects")
        if self.fate is not None:
            self.fate.reconnected_at = time.time()
        for pending in self.outbox:
            if pending.attempts:
                gen.count("resent")
        self.flush()
        self.request_sync()

    # --- sending ------------------------------------------------------------------------------

    def send(self, pending: Pending) -> None:
        if pending.kind == "send" and (not self.connected or self.held_back()):
            self.outbox.append(pending)
            self.schedule_flush()
            return
        self._emit(pending)

    def held_back(self) -> bool:
        return bool(self.outbox) or time.time() < self.paused_until

    def pause(self, pending: Pending, delay: float) -> None:
        """Hold every send back for `delay` seconds; `pending` goes first afterwards."""
        self.paused_until = max(self.paused_until, time.time() + delay)
        self.outbox.append(pending)
        self.schedule_flush()

    def schedule_flush(self) -> None:
        if self.flush_due or not self.connected:
            return  # a flush is on its way, or the reconnect flushes
        self.flush_due = True

        def due() -> None:
            self.flush_due = False
            self.flush()

        self.gen.later(max(0.0, self.paused_until - time.time()), due)

    def flush(self) -> None:
        """Send what waits in the outbox: nothing while paused, else the oldest, one at a
        time (`BACKLOG_IN_FLIGHT`), each next one when one is accepted."""
        if not self.connected or not self.outbox:
            return
        now = time.time()
        if now < self.paused_until:
            self.schedule_flush()
            return
        gen = self.gen
        waiting = []
        for pending in sorted(self.outbox, key=lambda p: p.due):
            if now - pending.due > gen.plan.give_up_after:
                gen.count("abandoned")
            else:
                waiting.append(pending)
        self.paused_until = 0.0
        room = BACKLOG_IN_FLIGHT - sum(1 for p in self.pending.values() if p.kind == "send")
        self.outbox = waiting[max(0, room) :]
        for pending in waiting[: max(0, room)]:
            self._emit(pending)

    def _emit(self, pending: Pending) -> None:
        client = self.client
        if client is None or not client.connected:
            if pending.kind == "sync":
                self.syncing = False  # the reconnect syncs
            else:
                self.outbox.append(pending)
            return
        pending.sent_at = time.time()
        pending.attempts += 1
        ack = client.emit(
            "message:send" if pending.kind == "send" else pending.kind, pending.payload
        )
        self.pending[ack] = pending
        self.gen.busy.add(self)

    def request_sync(self) -> None:
        """Sync now, or once more when the sync under way is complete."""
        if self.syncing:
            self.sync_again = True
            return
        self.syncing = True
        self.sync_again = False
        self.sync_pages = 0
        self._sync_page()

    def sync_spread(self) -> None:
        """Sync within the next `sync_spread` seconds: a gateway asks all its sockets at once,
        and they should not all come back in the same instant."""
        if self.syncing:
            self.sync_again = True
            return
        if self.sync_soon:
            return
        self.sync_soon = True

        def now() -> None:
            self.sync_soon = False
            self.request_sync()

        self.gen.later(self.gen.rng.uniform(0, self.gen.plan.sync_spread), now)

    def _sync_page(self) -> None:
        cursors = {}
        for conv in self.convs:
            cursors[self.gen.plan.conv_ids[conv]] = self._advance(conv)
        # Every page of one sync carries the same `since`: only a complete answer moves it.
        payload: dict[str, Any] = {"cursors": cursors}
        if self.since is not None:
            payload["since"] = self.since
        self.send(Pending("sync", time.time(), -1, "", payload))

    def _advance(self, conv: int) -> int:
        """The highest seq held with nothing missing below it (from the run's base)."""
        held = self.held[conv]
        c = self.contig[conv]
        while c + 1 in held:
            c += 1
        self.contig[conv] = c
        return c

    def on_ack(self, ack: int, data: str) -> None:
        pending = self.pending.pop(ack, None)
        if not self.pending:
            self.gen.busy.discard(self)
        if pending is None:
            return  # answered after the client stopped waiting (counted as no answer)
        gen = self.gen
        now = time.time()
        try:
            body = json.loads(data)[0]
        except (ValueError, IndexError, KeyError):
            gen.error(f"{pending.kind}:malformed_ack")
            return
        if not body.get("ok"):
            code = str((body.get("error") or {}).get("code") or "unknown")
            gen.answered(pending, now, code)
            gen.error(f"{pending.kind}:{code}")
            self.retry(pending, code, _retry_after(body))
            return
        gen.answered(pending, now, None)
        if pending.kind == "sync":
            self.on_synced(body, now)
            return
        if self.outbox:
            self.flush()
        message = body.get("message") or {}
        seq = int(message.get("seq", 0))
        gen.on_acked(self, pending, seq, str(message.get("id", "")), now)
        if pending.conv in self.held:
            self.held[pending.conv][seq] = OWN
            self.top[pending.conv] = max(self.top[pending.conv], seq)

    def retry(self, pending: Pending, code: str, retry_after: float | None) -> None:
        """What an app does with a refused or unanswered request (CONTRACT §7.1)."""
        gen = self.gen
        if gen.finishing:
            return
        rng = gen.rng
        if code in RETRY_AFTER:
            # Spread over half the wait again, so that refused clients do not return as one.
            delay = (retry_after if retry_after is not None else 1.0) * rng.uniform(1.0, 1.5)
        elif code in RETRY_SOON:
            backoff = TIMEOUT_RETRY_S * 2 ** max(0, pending.attempts - 1)
            delay = min(TIMEOUT_RETRY_MAX_S, backoff) * rng.uniform(0.75, 1.25)
        elif pending.kind == "sync":
            delay = 1.0  # any other refusal of a sync: try again a second later
        else:
            self.flush()
            return  # the send itself was refused: an app would show the error
        if pending.kind == "sync":
            self.syncing = False
            gen.later(delay, self.request_sync)
            return
        if time.time() - pending.due > gen.plan.give_up_after:
            gen.count("abandoned")
            self.flush()
            return
        gen.count("retries")
        self.pause(pending, delay)

    def on_synced(self, body: dict[str, Any], now: float) -> None:
        gen = self.gen
        more = False
        for entry in body.get("conversations") or []:
            conv = gen.conv_index.get(str(entry.get("conversation", {}).get("id")))
            if conv is None or conv not in self.held:
                continue
            for message in entry.get("messages") or []:
                self.receive(message, now, SYNCED)
            more = more or bool(entry.get("has_more"))
        complete = body.get("complete")
        if complete is None:  # a server from before bounded answers
            complete = not more
        self.sync_pages += 1
        if not complete:
            if self.sync_pages < SYNC_PAGES_MAX:
                gen.count("sync_pages_more")
                self._sync_page()
                return
            gen.error("sync:too_many_pages")
        elif body.get("synced_at"):
            self.since = str(body["synced_at"])
        self.syncing = False
        gen.count("syncs")
        if self.fate is not None and self.fate.synced_at is None:
            self.fate.synced_at = now
        if self.sync_again:
            self.request_sync()

    # --- receiving ------------------------------------------------------------------------------

    def on_event(self, packet: str) -> None:
        gen = self.gen
        if packet.startswith('42["message:new",'):
            try:
                message = json.loads(packet[2:])[1]
            except (ValueError, IndexError):
                gen.error("event:malformed")
                return
            self.receive(message, time.time(), LIVE)
        elif packet.startswith('42["sync:required"'):
            try:
                reason = str((json.loads(packet[2:])[1] or {}).get("reason"))
            except (ValueError, IndexError, AttributeError):
                reason = "unreadable"
            gen.count(f"sync_required:{reason}")
            self.sync_spread()
        else:
            gen.count("other_events")

    def receive(self, message: dict[str, Any], now: float, source: int) -> None:
        gen = self.gen
        client_msg_id = str(message.get("client_msg_id") or "")
        if not client_msg_id.startswith(gen.prefix):
            if source == LIVE:
                gen.count("foreign_messages")
            return
        conv = gen.conv_index.get(str(message.get("conversation_id")))
        if conv is None or conv not in self.held:
            gen.error("event:unexpected_conversation")
            return
        seq = int(message.get("seq", 0))
        held = self.held[conv]
        sender = int(client_msg_id.split(".", 2)[1])
        if sender == self.index:
            if source == LIVE:
                gen.count("echo")
            held.setdefault(seq, OWN)
            return
        previous = held.get(seq)
        if previous is not None:
            if source == LIVE and previous == LIVE:
                gen.count("duplicates")
            return
        held[seq] = source
        if self.arrived is not None:
            self.arrived[conv][seq] = now
        if seq > self.top[conv]:
            self.top[conv] = seq
        gen.delivered += 1
        if source == LIVE:
            gen.live += 1
            if seq > self.contig[conv] + 1 and not self.gap_check:
                self.gap_check = True
                gen.later(GAP_GRACE_S, self.check_gaps)
            if seq < self.maxseen[conv]:
                gen.count("out_of_order")
            else:
                self.maxseen[conv] = seq
            try:
                due = float(str(message.get("text", "")).split(" ", 1)[0])
            except ValueError:
                gen.error("event:bad_text")
                return
            if due >= gen.measure_from:
                gen.e2e.record(now - due)
                gen.e2e_interval.record(now - due)
        else:
            gen.count("via_sync")
        gen.last_delivery = now

    def check_gaps(self) -> None:
        """A hole still there after the grace time: something was missed, sync."""
        self.gap_check = False
        if self.gen.finishing or not self.connected:
            return
        if any(self._advance(conv) < self.top[conv] for conv in self.convs):
            self.gen.count("gap_syncs")
            self.request_sync()


class Generator:
    """The devices and the schedule of one worker process."""

    def __init__(self, plan: WorkerPlan, pipe: Connection) -> None:
        self.plan = plan
        self.pipe = pipe
        self.tag = plan.tag
        self.prefix = plan.tag + "."
        # Reconnect jitter and slot order, reproducible per seed: no secret in it.
        self.rng = random.Random(plan.seed * 7919 + plan.worker)  # noqa: S311
        self.conv_index = {cid: i for i, cid in enumerate(plan.conv_ids)}
        self.devices: dict[int, Device] = {}
        self.busy: set[Device] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.fates: list[DeviceFate] = []
        self.counters: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.acked: list[tuple[int, int, int, float]] = []
        self.acked_ids: dict[str, str] = {}
        # `answer`: from each send attempt to its answer, whatever it said.
        self.hists = {name: Histogram() for name in ("ack", "lag", "connect", "answer")}
        # Send answers per second of the run, by outcome ("ok" or the error code).
        self.timeline: dict[int, dict[str, int]] = {}
        # (kind, sent at, answered at, code) of every refused or unanswered attempt.
        self.refusals: list[tuple[str, float, float, str]] = []
        self.e2e = Histogram()
        self.e2e_interval = Histogram()
        self.ack_interval = Histogram()
        self.lag_interval = Histogram()
        self.delivered = 0
        self.live = 0
        self.expected = 0
        self.sent = 0
        self.acks_ok = 0
        self.t0 = 0.0
        self.measure_from = float("inf")
        self.last_delivery = 0.0
        self.times: dict[str, float] = {}
        self.finishing = False
        self.dropped = False  # every connection dropped on purpose (idle's disconnect storm)
        self.done = asyncio.Event()
        self.schedule_task: asyncio.Task[None] | None = None

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def later(self, delay: float, job: Callable[[], None]) -> None:
        """Run `job` in `delay` seconds unless the run is over."""

        def fire() -> None:
            if not self.finishing:
                job()

        asyncio.get_running_loop().call_later(delay, fire)

    def answered(self, pending: Pending, now: float, code: str | None) -> None:
        """One attempt answered (`code` None: ok), or given up on (`no_answer`)."""
        if pending.kind == "send":
            took = now - pending.sent_at
            self.hists["answer"].record(took)
            if took > self.plan.answer_within:
                self.count("slow_answers")
            if self.t0:
                bucket = self.timeline.setdefault(int(now - self.t0), {})
                outcome = code or "ok"
                bucket[outcome] = bucket.get(outcome, 0) + 1
        if code is not None:
            self.refusals.append((pending.kind, pending.sent_at, now, code))

    # --- acks -----------------------------------------------------------------------------------

    def on_acked(
        self, device: Device, pending: Pending, seq: int, message_id: str, now: float
    ) -> None:
        previous = self.acked_ids.get(pending.client_msg_id)
        if previous is not None:
            # A resend answered: the same message must come back, never a second one.
            if previous != message_id:
                self.count("duplicate_stores")
            return
        self.acked_ids[pending.client_msg_id] = message_id
        self.acks_ok += 1
        self.acked.append((pending.conv, seq, device.index, now))
        self.expected += self.plan.conv_devices[pending.conv] - 1
        if pending.due >= self.measure_from:
            self.hists["ack"].record(now - pending.due)
            self.ack_interval.record(now - pending.due)
        self.times["last_ack"] = now

    def sweep_timeouts(self) -> None:
        now = time.time()
        limit = self.plan.ack_timeout
        for device in list(self.busy):
            expired = [a for a, p in device.pending.items() if now - p.sent_at > limit]
            for ack in expired:
                pending = device.pending.pop(ack)
                # Never answered: the server broke its own bound. Retried as a timeout.
                self.answered(pending, now, "no_answer")
                self.error(f"{pending.kind}:no_answer")
                device.retry(pending, "no_answer", None)
            if not device.pending:
                self.busy.discard(device)

    def in_flight(self) -> int:
        return sum(len(d.pending) for d in self.busy) + sum(
            len(d.outbox) for d in self.devices.values() if d.outbox
        )

    # --- phases ---------------------------------------------------------------------------------

    async def connect_all(self) -> None:
        plan = self.plan
        semaphore = asyncio.Semaphore(plan.connect_concurrency)
        self.times["connect_start"] = time.time()

        async def one(spec: DeviceSpec) -> None:
            device = Device(self, spec)
            self.devices[spec.index] = device
            async with semaphore:
                started = time.time()
                try:
                    await device.connect()
                except ConnectFailed as exc:
                    self.error(f"connect:{exc.code}")
                    return
                now = time.time()
                self.hists["connect"].record(now - started)
                self.times["connect_end"] = max(self.times.get("connect_end", 0.0), now)
                self.count("connected")

        await asyncio.gather(*(one(spec) for spec in plan.devices))

    async def run_schedule(self, t0: float) -> None:
        plan = self.plan
        self.t0 = t0
        self.measure_from = t0 + plan.warmup
        slots = list(plan.send_slots)
        if not slots or plan.rate <= 0:
            return
        self.rng.shuffle(slots)
        total = int(plan.rate * plan.duration)
        mine = range(plan.worker, total, plan.workers)
        self.times["first_due"] = t0 + (mine[0] / plan.rate) if mine else t0
        # The text is the due time (17 characters), a space and padding up to `size`.
        pad = "x" * max(0, plan.size - 18)
        k = 0
        while k < len(mine) and not self.finishing:
            due = t0 + mine[k] / plan.rate
            now = time.time()
            if due > now:
                await asyncio.sleep(due - now)
                now = time.time()
            while k < len(mine):
                due = t0 + mine[k] / plan.rate
                if due > now:
                    break
                device_index, conv = slots[k % len(slots)]
                device = self.devices.get(device_index)
                client_msg_id = f"{self.tag}.{device_index}.{mine[k]}"
                payload = {
                    "conversation_id": plan.conv_ids[conv],
                    "client_msg_id": client_msg_id,
                    "text": f"{due:.6f} {pad}",
                }
                lag = now - due
                self.hists["lag"].record(lag)
                self.lag_interval.record(lag)
                self.sent += 1
                if device is not None:
                    device.send(Pending("send", due, conv, client_msg_id, payload))
                else:
                    self.error("send:no_device")
                k += 1
                now = time.time()
        self.times["last_sent"] = time.time()

    # --- reporting --------------------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        snapshot = {
            "sent": self.sent,
            "acked": self.acks_ok,
            "delivered": self.delivered,
            "live": self.live,
            "expected": self.expected,
            "in_flight": self.in_flight(),
            "connected": sum(1 for d in self.devices.values() if d.connected),
            "errors": sum(self.errors.values()),
            "synced": sum(1 for f in self.fates if f.synced_at is not None),
            "fates": len(self.fates),
            "ack": self.ack_interval.to_wire(),
            "e2e": self.e2e_interval.to_wire(),
            "lag": self.lag_interval.to_wire(),
        }
        self.ack_interval, self.e2e_interval, self.lag_interval = (
            Histogram(),
            Histogram(),
            Histogram(),
        )
        return snapshot

    def result(self) -> WorkerResult:
        held: dict[int, dict[int, list[int]]] = {}
        arrivals: dict[int, dict[int, dict[int, float]]] = {}
        down: list[int] = []
        unanswered = 0
        for index, device in self.devices.items():
            unanswered += sum(1 for p in device.pending.values() if p.kind == "send")
            if not device.connected:
                # Dropped on purpose (idle's disconnect storm) is not down.
                if not self.dropped:
                    down.append(index)
                continue
            held[index] = {conv: sorted(seqs) for conv, seqs in device.held.items() if seqs}
            if device.arrived is not None:
                arrivals[index] = {conv: dict(t) for conv, t in device.arrived.items() if t}
        counters = dict(self.counters)
        counters.update(
            sent=self.sent,
            acked=self.acks_ok,
            delivered=self.delivered,
            live=self.live,
            expected=self.expected,
            unanswered_at_end=unanswered,
        )
        hists = {name: h.to_wire() for name, h in self.hists.items()}
        hists["e2e"] = self.e2e.to_wire()
        self.times["last_delivery"] = self.last_delivery
        return WorkerResult(
            worker=self.plan.worker,
            hists=hists,
            counters=counters,
            errors=dict(self.errors),
            acked=self.acked,
            held=held,
            down=down,
            fates=self.fates,
            times=self.times,
            refusals=self.refusals,
            timeline=self.timeline,
            arrivals=arrivals,
        )

    def drop_all(self) -> int:
        """Drop every connection at once, as a network failure would, and do not come back."""
        self.dropped = True
        dropped = 0
        for device in self.devices.values():
            if device.connected and device.client is not None:
                device.client.abort()
                dropped += 1
        self.times["dropped_at"] = time.time()
        return dropped

    async def stop_sending(self) -> None:
        if self.schedule_task is not None:
            self.schedule_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.schedule_task
        self.times.setdefault("last_sent", time.time())

    def close_all(self) -> None:
        self.finishing = True
        for device in self.devices.values():
            if device.client is not None:
                device.client.close()


async def _serve(plan: WorkerPlan, pipe: Connection) -> None:
    gen = Generator(plan, pipe)
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def readable() -> None:
        try:
            while pipe.poll():
                commands.put_nowait(pipe.recv())
        except (EOFError, OSError):
            commands.put_nowait(("finish",))
            loop.remove_reader(pipe.fileno())

    loop.add_reader(pipe.fileno(), readable)
    # uvloop makes a watched descriptor non-blocking; a result bigger than the pipe's buffer
    # must then wait for the coordinator to read it, not fail with EAGAIN.
    os.set_blocking(pipe.fileno(), True)

    async def ticker(every: float, job: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(every)
            job()

    sweeper = asyncio.create_task(ticker(0.2, gen.sweep_timeouts))
    reporter: asyncio.Task[None] | None = None
    try:
        while True:
            command = await commands.get()
            name = command[0]
            if name == "ping":
                pipe.send(("ready", plan.worker))
            elif name == "connect":
                reporter = reporter or asyncio.create_task(
                    ticker(1.0, lambda: pipe.send(("progress", plan.worker, gen.progress())))
                )
                await gen.connect_all()
                # What exists now lives until the end: keep the collector off it while measuring.
                gc.collect()
                gc.freeze()
                pipe.send(("connected", plan.worker, gen.progress()))
            elif name == "run":
                gen.schedule_task = asyncio.create_task(gen.run_schedule(float(command[1])))
            elif name == "stop":
                await gen.stop_sending()
                pipe.send(("stopped", plan.worker))
            elif name == "drop":
                pipe.send(("dropped", plan.worker, gen.drop_all()))
            elif name == "finish":
                gen.finishing = True
                if gen.schedule_task is not None:
                    gen.schedule_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await gen.schedule_task
                if reporter is not None:
                    reporter.cancel()
                result = gen.result()
                gen.close_all()
                pipe.send(("result", plan.worker, result))
                break
    finally:
        sweeper.cancel()
        loop.remove_reader(pipe.fileno())
        for task in list(gen.tasks):
            task.cancel()
        await asyncio.sleep(0.2)  # let the close frames go out


def worker_main(plan: WorkerPlan, pipe: Connection) -> None:
    """Entry point of a generator process."""
    # Ctrl-C reaches the whole process group: the coordinator decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if plan.use_uvloop:
        try:
            import uvloop

            uvloop.run(_serve(plan, pipe))
            return
        except ImportError:
            pass
    asyncio.run(_serve(plan, pipe))
