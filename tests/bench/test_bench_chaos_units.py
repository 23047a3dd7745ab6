"""The bench's new arithmetic and behaviour without a stack: the fault schedule and how a
fault is judged, the answer and storm summaries, and the simulated client's contract
manners (retries after `unavailable` and `timeout`, sync pages, `sync:required`, gaps)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import pytest
from chatbench.chaos import (
    FAULTS,
    Driver,
    FaultRecord,
    Schedule,
    judge,
    late_messages,
    parse_faults,
    summarize,
)
from chatbench.histogram import Histogram
from chatbench.plan import DeviceSpec, WorkerPlan
from chatbench.report import answer_summary, storm_sends, sync_summary, window_outcomes
from chatbench.scenarios import ALL_FAULTS, configure, target_size
from chatbench.worker import Device, Generator, Pending

# --- the fault schedule -------------------------------------------------------------------------


def test_faults_are_parsed_in_the_order_given_and_unknown_ones_refused() -> None:
    assert parse_faults(" mongodb, redis ,") == ["mongodb", "redis"]
    assert parse_faults(ALL_FAULTS) == list(FAULTS)
    with pytest.raises(ValueError, match="unknown fault\\(s\\) disk: known are redis"):
        parse_faults("redis,disk")
    with pytest.raises(ValueError, match="no fault"):
        parse_faults(" , ")


def test_the_schedule_bounds_the_traffic_it_needs() -> None:
    schedule = Schedule(["redis", "auth"], lead=5, down=2, gap=15, recover_timeout=90)
    # Lead, then per fault: down, the longest recovery, the gap, and a start's own bound.
    assert schedule.longest() == 5 + 2 * (2 + 90 + 15 + 60)


def test_the_chaos_preset_runs_every_fault_at_50_per_second() -> None:
    config = configure("chaos", {}, {})
    assert config.rate == 50
    assert config.devices == 2
    assert parse_faults(config.faults) == list(FAULTS)
    assert target_size(config)
    assert not target_size(configure("chaos", {}, {"faults": "redis"}))
    assert config.label == "chaos@50/s"


class FakeStack:
    """Records what the driver does; `ready_after` resumes until every service is ready."""

    def __init__(self, *, ready_after: int = 0, failing: str = "") -> None:
        self.calls: list[tuple[str, str, float]] = []
        self.ready_after = ready_after
        self.failing = failing
        self.polls = 0

    def interrupt(self, component: str) -> None:
        self.calls.append(("interrupt", component, time.time()))

    def resume(self, component: str) -> None:
        if component == self.failing:
            raise RuntimeError(f"{component} would not start")
        self.calls.append(("resume", component, time.time()))
        self.polls = 0

    def readiness(self) -> dict[str, int]:
        self.polls += 1
        ready = self.polls > self.ready_after
        return {"auth": 200, "gateway1": 200 if ready else 503}


def _drive(stack: FakeStack, faults: list[str], recover_timeout: float = 5.0) -> Driver:
    schedule = Schedule(faults, lead=0.05, down=0.05, gap=0.05, recover_timeout=recover_timeout)
    driver = Driver(stack, schedule, time.time())
    driver.start()
    driver.join(10)
    assert not driver.is_alive()
    return driver


def test_the_driver_takes_each_component_down_and_up_in_order_and_times_recovery() -> None:
    stack = FakeStack(ready_after=2)
    driver = _drive(stack, ["redis", "gateway"])
    assert [(what, name) for what, name, _ in stack.calls] == [
        ("interrupt", "redis"),
        ("resume", "redis"),
        ("interrupt", "gateway"),
        ("resume", "gateway"),
    ]
    first, second = driver.records
    assert first.injected_at < first.restarted_at < first.recovered_at < second.injected_at  # type: ignore[operator]
    # Down for `down` seconds, then ready only after the third readiness poll.
    assert stack.calls[1][2] - stack.calls[0][2] >= 0.05
    assert first.recovered_at - first.restarted_at >= 0.2  # type: ignore[operator]
    assert first.error is None


def test_a_fault_that_does_not_recover_is_recorded_and_the_next_one_still_runs() -> None:
    stack = FakeStack(failing="auth")
    driver = _drive(stack, ["auth", "redis"])
    failed, fine = driver.records
    assert failed.error == "RuntimeError: auth would not start"
    assert failed.recovered_at is None
    assert fine.recovered_at is not None

    never = _drive(FakeStack(ready_after=10**6), ["message"], recover_timeout=0.3)
    (record,) = never.records
    assert record.recovered_at is None
    assert record.not_ready == {"gateway1": 503}
    assert record.error is not None


# --- judging a fault ----------------------------------------------------------------------------


def _fault(name: str, injected: float, recovered: float | None) -> FaultRecord:
    return FaultRecord(name, injected, injected + 1.0, recovered)


FAULTS_AT = [_fault("redis", 100.0, 104.0), _fault("auth", 130.0, 131.0)]


def test_a_message_before_any_fault_has_ten_seconds_from_its_ack() -> None:
    assert judge(50.0, 50.1, FAULTS_AT, 10.0) == (None, 60.0)


def test_a_message_acked_during_an_outage_has_ten_seconds_from_the_recovery() -> None:
    assert judge(102.0, 103.0, FAULTS_AT, 10.0) == (0, 114.0)
    # After the recovery, ten seconds from its own ack again (the window is still the fault's).
    assert judge(110.0, 110.1, FAULTS_AT, 10.0) == (0, 120.0)


def test_a_fault_striking_before_a_message_reached_everyone_takes_it_over() -> None:
    # Acked 5 s before auth died, not everywhere yet: judged against auth's recovery.
    assert judge(125.0, 132.0, FAULTS_AT, 10.0) == (1, 141.0)
    # Everywhere before auth died: auth changes nothing.
    assert judge(125.0, 125.2, FAULTS_AT, 10.0) == (0, 135.0)


def test_a_fault_that_never_recovered_leaves_no_deadline() -> None:
    faults = [_fault("mongodb", 100.0, None)]
    owner, deadline = judge(101.0, math.inf, faults, 10.0)
    assert owner == 0
    assert deadline == math.inf


def test_late_messages_count_every_member_device_but_the_sender_and_the_down() -> None:
    # Conversation 0: devices 1 (sender), 2, 3, and 4 which was down at the end.
    conv_devices = {0: [1, 2, 3, 4]}
    acked = [
        (0, 1, 1, 50.0),  # on time everywhere
        (0, 2, 1, 51.0),  # device 3 got it 12 s later: late
        (0, 3, 1, 102.0),  # during the redis outage; device 3 never got it
    ]
    arrivals = {2: {0: {1: 50.1, 2: 51.1, 3: 104.5}}, 3: {0: {1: 50.2, 2: 63.0}}}
    late = late_messages(FAULTS_AT, acked, arrivals, conv_devices, {4}, 10.0)
    assert late[None] == {"messages": 2, "late": 1, "late_pairs": 1, "missing": 0}
    assert late[0] == {"messages": 1, "late": 1, "late_pairs": 0, "missing": 1}


def test_summarize_puts_refusals_and_5xx_in_the_window_they_belong_to() -> None:
    faults = [_fault("rabbitmq", 100.0, 110.0)]
    refusals = [
        ("send", 99.0, 99.5, "unavailable"),  # before the fault
        ("send", 101.0, 101.1, "unavailable"),
        ("send", 105.0, 110.0, "timeout"),  # sent before the recovery: not after it
        ("send", 111.0, 111.2, "unavailable"),  # after the recovery: a 5xx
        ("sync", 112.0, 112.1, "internal"),
        ("send", 113.0, 113.1, "validation_error"),  # the request's fault, not the server's
        ("send", 129.0, 131.0, "timeout"),  # answered after the window: the next fault's
    ]
    probes = [
        (105.0, "auth /readyz", 0),
        (110.5, "auth /readyz", 200),
        (111.0, "gateway1 /readyz", 503),
    ]
    steady, fault = summarize(
        faults,
        t0=90.0,
        end=130.0,
        acked=[(0, 1, 1, 95.0), (0, 2, 1, 112.0)],
        arrivals={2: {0: {1: 95.1, 2: 112.1}}},
        conv_devices={0: [1, 2]},
        down=set(),
        refusals=refusals,
        probes=probes,
        within=10.0,
    )
    assert steady["sends_unavailable"] == 1
    assert steady["errors_5xx"]["total"] == 1
    assert steady["acked"] == 1
    assert (fault["at_s"], fault["window_s"], fault["recover_s"]) == (10.0, 30.0, 10.0)
    assert fault["sends_unavailable"] == 2
    assert fault["sends_timeout"] == 1
    assert fault["refused"]["sync:internal"] == 1
    after = fault["errors_5xx_after_recovery"]
    assert after == {"total": 3, "socket": 2, "rest": {"gateway1 /readyz": 1}, "last_s": 2.1}
    assert fault["late_messages"] == 0
    assert fault["acked"] == 1


# --- answers and the storm ----------------------------------------------------------------------


def test_storm_sends_count_the_seconds_between_the_kill_and_the_last_sync() -> None:
    timelines = [{2: {"ok": 40}, 3: {"ok": 45, "unavailable": 5}}, {4: {"ok": 50}, 9: {"ok": 9}}]
    assert window_outcomes(timelines, 3.2, 4.5) == {"ok": 95, "unavailable": 5}
    sends = storm_sends(timelines, 3.2, 4.5, 50)
    assert sends["shed"] == 5
    assert sends["acked_per_s"] == 47.5
    assert sends["offered_per_s"] == 50


def test_answer_summary_counts_never_answered_and_send_refusals_only() -> None:
    hist = Histogram()
    for seconds in (0.01, 0.02, 3.0):
        hist.record(seconds)
    counters = {"slow_answers": 1, "unanswered_at_end": 2, "retries": 4, "abandoned": 1}
    refusals = [
        ("send", 0.0, 0.1, "unavailable"),
        ("send", 0.0, 15.0, "no_answer"),
        ("sync", 0.0, 0.1, "timeout"),
    ]
    summary = answer_summary(hist, counters, refusals)
    assert summary["never_answered"] == 1
    assert summary["in_flight_at_end"] == 2
    assert summary["refused"] == {"no_answer": 1, "unavailable": 1}
    assert summary["ms"]["count"] == 3
    assert summary["slow"] == 1
    sync = sync_summary({"syncs": 3, "sync_required:redis_reconnected": 2}, refusals)
    assert sync["required"] == {"redis_reconnected": 2}
    assert sync["refused"] == {"timeout": 1}


# --- the simulated client's manners -------------------------------------------------------------


class FakeClient:
    connected = True

    def __init__(self) -> None:
        self.emitted: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, payload: dict[str, Any]) -> int:
        self.emitted.append((event, payload))
        return len(self.emitted) - 1


def _device(retry_s: float = 60.0, spread: float = 0.3) -> tuple[Generator, Device, FakeClient]:
    plan = WorkerPlan(
        worker=0,
        workers=1,
        tag="t1",
        devices=[],
        conv_ids=["c0"],
        conv_base=[0],
        user_convs={0: [0]},
        conv_devices=[2],
        send_slots=[],
        rate=1,
        duration=1,
        warmup=0,
        size=40,
        ack_timeout=10,
        connect_timeout=1,
        connect_concurrency=1,
        reconnect_jitter=0,
        seed=1,
        give_up_after=retry_s,
        sync_spread=spread,
    )
    gen = Generator(plan, None)  # type: ignore[arg-type]
    device = gen.devices[0] = Device(gen, DeviceSpec(0, 0, "token", ["ws://unused"]))
    client = FakeClient()
    device.client = client  # type: ignore[assignment]
    return gen, device, client


def _answer(device: Device, ack: int, body: dict[str, Any]) -> None:
    device.on_ack(ack, json.dumps([body]))


def _send(device: Device, due: float, n: int = 7) -> None:
    cid = f"t1.0.{n}"
    payload = {"conversation_id": "c0", "client_msg_id": cid, "text": f"{due} x"}
    device.send(Pending("send", due, 0, cid, payload))


async def test_unavailable_is_retried_after_retry_after_with_the_same_client_msg_id() -> None:
    gen, device, client = _device()
    _send(device, time.time())
    error = {"code": "unavailable", "message": "busy", "details": {"retry_after": 0.2}}
    _answer(device, 0, {"ok": False, "error": error})
    assert gen.in_flight() == 1  # waiting to be retried
    await asyncio.sleep(0.1)
    assert len(client.emitted) == 1  # not before retry_after
    await asyncio.sleep(0.25)
    assert [p["client_msg_id"] for _, p in client.emitted] == ["t1.0.7", "t1.0.7"]
    _answer(device, 1, {"ok": True, "message": {"id": "m1", "seq": 1}})
    assert gen.acks_ok == 1
    assert gen.counters["retries"] == 1
    assert gen.refusals[0][3] == "unavailable"


async def test_timeout_is_retried_after_a_second_and_a_refused_request_is_not() -> None:
    gen, device, client = _device()
    _send(device, time.time())
    _answer(device, 0, {"ok": False, "error": {"code": "timeout", "message": "?"}})
    await asyncio.sleep(0.6)
    assert len(client.emitted) == 1
    await asyncio.sleep(0.7)
    assert len(client.emitted) == 2
    _answer(device, 1, {"ok": False, "error": {"code": "validation_error", "message": "no"}})
    await asyncio.sleep(0.6)
    assert len(client.emitted) == 2
    assert gen.in_flight() == 0


async def test_a_refused_device_holds_its_sends_then_sends_them_one_at_a_time() -> None:
    gen, device, client = _device()
    now = time.time()
    _send(device, now, 1)
    error = {"code": "unavailable", "message": "busy", "details": {"retry_after": 0.2}}
    _answer(device, 0, {"ok": False, "error": error})
    _send(device, now + 0.02, 2)
    _send(device, now + 0.01, 3)
    assert len(client.emitted) == 1  # held back while paused
    assert gen.in_flight() == 3
    await asyncio.sleep(0.35)
    # Oldest first, each when the one before was accepted.
    assert [p["client_msg_id"] for _, p in client.emitted] == ["t1.0.1", "t1.0.1"]
    _answer(device, 1, {"ok": True, "message": {"id": "m1", "seq": 1}})
    assert [p["client_msg_id"] for _, p in client.emitted[2:]] == ["t1.0.3"]
    _answer(device, 2, {"ok": True, "message": {"id": "m3", "seq": 2}})
    assert [p["client_msg_id"] for _, p in client.emitted[3:]] == ["t1.0.2"]
    _answer(device, 3, {"ok": True, "message": {"id": "m2", "seq": 3}})
    assert gen.in_flight() == 0
    assert gen.acks_ok == 3
    # The outbox empty, a fresh send goes at once, another beside it.
    _send(device, time.time(), 4)
    _send(device, time.time(), 5)
    assert len(client.emitted) == 6


async def test_a_send_too_late_is_abandoned_not_retried() -> None:
    gen, device, client = _device(retry_s=1.0)
    _send(device, time.time() - 5)
    _answer(device, 0, {"ok": False, "error": {"code": "timeout", "message": "?"}})
    await asyncio.sleep(0.6)
    assert len(client.emitted) == 1
    assert gen.counters["abandoned"] == 1


def _message(seq: int, sender: int = 1) -> dict[str, Any]:
    return {
        "id": f"m{seq}",
        "conversation_id": "c0",
        "seq": seq,
        "client_msg_id": f"t1.{sender}.{seq}",
        "text": "0 x",
    }


async def test_sync_pages_until_complete_with_the_same_since_then_adopts_synced_at() -> None:
    gen, device, client = _device()
    device.since = "2024-01-01T00:00:00Z"
    device.request_sync()
    device.request_sync()  # while one runs: one more after it, not two at once
    assert len(client.emitted) == 1
    page = {"conversation": {"id": "c0"}, "messages": [_message(1), _message(2)]}
    _answer(device, 0, {"ok": True, "conversations": [page], "complete": False, "synced_at": "x"})
    event, payload = client.emitted[1]
    assert event == "sync"
    assert payload == {"cursors": {"c0": 2}, "since": "2024-01-01T00:00:00Z"}
    last = {"conversation": {"id": "c0"}, "messages": [_message(3)]}
    _answer(
        device,
        1,
        {
            "ok": True,
            "conversations": [last],
            "complete": True,
            "synced_at": "2024-01-02T00:00:00Z",
        },
    )
    assert device.since == "2024-01-02T00:00:00Z"
    # The sync asked for meanwhile starts from the new cursors and the new since.
    assert client.emitted[2][1] == {"cursors": {"c0": 3}, "since": "2024-01-02T00:00:00Z"}
    assert gen.counters["syncs"] == 1
    assert gen.counters["via_sync"] == 3


async def test_sync_required_and_a_hole_that_stays_make_the_device_sync() -> None:
    gen, device, client = _device()
    device.on_event('42["sync:required",{"reason":"redis_reconnected"}]')
    device.on_event('42["sync:required",{"reason":"emit_failed"}]')
    # Within the spread, once for both.
    assert not client.emitted
    await asyncio.sleep(0.35)
    assert [event for event, _ in client.emitted] == ["sync"]
    assert gen.counters["sync_required:redis_reconnected"] == 1
    _answer(device, 0, {"ok": True, "conversations": [], "complete": True})

    device.on_event('42["message:new",' + json.dumps(_message(1)) + "]")
    device.on_event('42["message:new",' + json.dumps(_message(3)) + "]")  # 2 is missing
    assert len(client.emitted) == 1
    await asyncio.sleep(1.2)
    assert client.emitted[-1] == ("sync", {"cursors": {"c0": 1}})
    assert gen.counters["gap_syncs"] == 1


async def test_a_refused_sync_is_tried_again_after_retry_after() -> None:
    _, device, client = _device()
    device.request_sync()
    error = {"code": "unavailable", "message": "busy", "details": {"retry_after": 0.1}}
    _answer(device, 0, {"ok": False, "error": error})
    await asyncio.sleep(0.3)
    assert [event for event, _ in client.emitted] == ["sync", "sync"]
