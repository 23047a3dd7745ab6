"""The chaos scenario: steady traffic while one component after another fails and comes back.

Each fault takes one component down (servers are restarted cleanly, services
die by SIGKILL), keeps it down `down` seconds, starts it again and waits
until every service answers `/readyz` 200: that moment is its recovery. After
`gap` seconds of steady traffic the next one follows. Redis and RabbitMQ are
private servers the bench started for the run: never the machine's own.

What a fault is judged by (`summarize`), over its window (from the fault to
the next one, or to the end):
- sends answered `unavailable` / `timeout` (and never answered), syncs refused;
- late messages: acknowledged messages that some member device (every device
  of every member but the sending one, the sender's other devices included)
  did not hold `within` seconds after the later of the acknowledgement and
  the recovery (`judge`). A message is judged against the fault it was acked
  during, or against a later one that struck before it had reached every
  device; `judged` counts them, `acked` counts those acked in the window;
- 5xx after recovery: socket requests sent after the recovery (and answered
  before the next fault) answered `unavailable`, `timeout` or `internal` (or
  never answered), and REST probes
  (readiness of every service, a read from auth and from message) sent after
  it that got a 5xx or no answer at all;
- seconds to recover: from the fault to every service ready.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

FAULTS: dict[str, str] = {
    "redis": "restart Redis",
    "rabbitmq": "restart RabbitMQ",
    "message": "SIGKILL the message service, start it again",
    "gateway": "SIGKILL gateway 1 (its clients move to gateway 2), start it again",
    "auth": "SIGKILL auth, start it again",
    "mongodb": "SIGKILL the database, start it again on its port and data",
}
# Answers that are the server's fault rather than the request's (HTTP 5xx), and no answer.
SERVER_FAULT_CODES = frozenset({"unavailable", "timeout", "internal", "no_answer"})


def parse_faults(text: str) -> list[str]:
    """`redis,rabbitmq,...` in the order given; an unknown name is an error naming the known."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}: known are {', '.join(FAULTS)}")
    if not names:
        raise ValueError(f"no fault named: known are {', '.join(FAULTS)}")
    return names


@dataclass(frozen=True)
class Schedule:
    faults: list[str]
    lead: float  # steady traffic before the first fault
    down: float  # seconds a component stays down
    gap: float  # steady traffic after each recovery (the last one's included)
    recover_timeout: float  # give up waiting for a recovery after this

    def longest(self) -> float:
        """Seconds the whole schedule may take at most: the generator plans that much traffic."""
        per_fault = self.down + self.recover_timeout + self.gap + 60.0  # 60: a start's own bound
        return self.lead + len(self.faults) * per_fault


@dataclass
class FaultRecord:
    name: str
    injected_at: float
    restarted_at: float | None = None
    recovered_at: float | None = None
    error: str | None = None
    not_ready: dict[str, int] = field(default_factory=dict)  # at the recovery deadline

    def as_dict(self, t0: float) -> dict[str, Any]:
        def rel(t: float | None) -> float | None:
            return None if t is None else round(t - t0, 3)

        return {
            "name": self.name,
            "at_s": rel(self.injected_at),
            "restarted_at_s": rel(self.restarted_at),
            "recovered_at_s": rel(self.recovered_at),
            "error": self.error,
            "not_ready": self.not_ready,
        }


class Target(Protocol):
    """What the driver needs of the stack (bench.stack.Stack has it)."""

    def interrupt(self, component: str) -> None: ...

    def resume(self, component: str) -> None: ...

    def readiness(self) -> dict[str, int]: ...


class Driver(threading.Thread):
    """Runs the schedule against the stack, off the coordinator's thread (which keeps
    reading the generator processes while a component takes seconds to start)."""

    def __init__(self, stack: Target, schedule: Schedule, t0: float) -> None:
        super().__init__(name="chaos-driver", daemon=True)
        self.stack = stack
        self.schedule = schedule
        self.t0 = t0
        self.records: list[FaultRecord] = []
        self.finished_at: float | None = None
        self.phase = "steady"  # for the progress line
        self._abort = threading.Event()

    def abort(self) -> None:
        self._abort.set()

    def _sleep_until(self, at: float) -> bool:
        """False when aborted."""
        return not self._abort.wait(max(0.0, at - time.time()))

    def run(self) -> None:
        schedule = self.schedule
        try:
            if not self._sleep_until(self.t0 + schedule.lead):
                return
            for name in schedule.faults:
                record = FaultRecord(name, time.time())
                self.records.append(record)
                try:
                    self.phase = f"{name} down"
                    self.stack.interrupt(name)
                    self._abort.wait(schedule.down)
                    self.phase = f"{name} starting"
                    self.stack.resume(name)
                    record.restarted_at = time.time()
                    self.phase = f"{name} recovering"
                    record.recovered_at, record.not_ready = self._wait_ready()
                    if record.recovered_at is None:
                        record.error = (
                            f"not every service ready after {schedule.recover_timeout:g} s"
                        )
                except Exception as exc:
                    record.error = f"{type(exc).__name__}: {str(exc)[:500]}"
                self.phase = f"after {name}"
                if not self._sleep_until(time.time() + schedule.gap):
                    return
        finally:
            self.finished_at = time.time()

    def _wait_ready(self) -> tuple[float | None, dict[str, int]]:
        deadline = time.time() + self.schedule.recover_timeout
        states: dict[str, int] = {}
        while time.time() < deadline and not self._abort.is_set():
            states = self.stack.readiness()
            if all(status == 200 for status in states.values()):
                return time.time(), {}
            time.sleep(0.1)
        return None, {name: status for name, status in states.items() if status != 200}


class Probe(threading.Thread):
    """REST calls every `every` seconds; records (sent at, target, status; 0: no answer)."""

    def __init__(
        self, targets: Mapping[str, tuple[str, dict[str, str]]], every: float = 0.5
    ) -> None:
        super().__init__(name="chaos-probe", daemon=True)
        self.targets = dict(targets)
        self.every = every
        self.records: list[tuple[float, str, int]] = []
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)

    def run(self) -> None:
        with httpx.Client(timeout=2.0) as client:
            while not self._stop_event.is_set():
                started = time.time()
                for name, (url, headers) in self.targets.items():
                    sent = time.time()
                    try:
                        status = client.get(url, headers=headers).status_code
                    except httpx.HTTPError:
                        status = 0
                    self.records.append((sent, name, status))
                self._stop_event.wait(max(0.0, started + self.every - time.time()))


# --- judging the run (pure) --------------------------------------------------------------------


def _window_of(at: float, faults: list[FaultRecord]) -> int | None:
    """The fault whose window holds the moment `at` (None: before the first fault)."""
    before = [i for i, f in enumerate(faults) if f.injected_at <= at]
    return before[-1] if before else None


def judge(
    ack_at: float, complete_at: float, faults: list[FaultRecord], within: float
) -> tuple[int | None, float]:
    """The fault a message is judged against (None: none) and the deadline it had to meet.

    A message has `within` seconds from its acknowledgement; acknowledged while a
    component was down, `within` seconds from the recovery; and a fault that struck
    before it had reached every device gives it `within` seconds from that recovery.
    """
    owner = _window_of(ack_at, faults)
    deadline = ack_at + within
    if owner is not None:
        recovered = faults[owner].recovered_at
        if recovered is None:
            deadline = math.inf
        elif recovered >= ack_at:
            deadline = max(deadline, recovered + within)
    for i, fault in enumerate(faults):
        if ack_at < fault.injected_at <= deadline and complete_at > fault.injected_at:
            owner = i
            recovered = fault.recovered_at
            deadline = math.inf if recovered is None else max(deadline, recovered + within)
    return owner, deadline


def late_messages(
    faults: list[FaultRecord],
    acked: Iterable[tuple[int, int, int, float]],
    arrivals: Mapping[int, Mapping[int, Mapping[int, float]]],
    conv_devices: Mapping[int, list[int]],
    down: set[int],
    within: float,
) -> dict[int | None, dict[str, int]]:
    """Per fault (None: before any), the messages judged against it, the late ones among
    them, and the (device, message) pairs that came late or never."""
    out: dict[int | None, dict[str, int]] = {}
    for conv, seq, sender, ack_at in acked:
        times = []
        missing = 0
        for device in conv_devices.get(conv, []):
            if device == sender or device in down:
                continue
            got = arrivals.get(device, {}).get(conv, {}).get(seq)
            if got is None:
                missing += 1
            else:
                times.append(got)
        complete_at = math.inf if missing else max(times, default=ack_at)
        owner, deadline = judge(ack_at, complete_at, faults, within)
        counts = out.setdefault(owner, {"messages": 0, "late": 0, "late_pairs": 0, "missing": 0})
        counts["messages"] += 1
        late_pairs = sum(1 for t in times if t > deadline)
        counts["late_pairs"] += late_pairs
        counts["missing"] += missing
        counts["late"] += bool(late_pairs or missing)
    return out


def acked_per_window(
    faults: list[FaultRecord], acked: Iterable[tuple[int, int, int, float]]
) -> dict[int | None, int]:
    counts: dict[int | None, int] = {}
    for *_, ack_at in acked:
        window = _window_of(ack_at, faults)
        counts[window] = counts.get(window, 0) + 1
    return counts


def _window(faults: list[FaultRecord], i: int, end: float) -> tuple[float, float]:
    start = faults[i].injected_at
    return start, faults[i + 1].injected_at if i + 1 < len(faults) else end


def summarize(
    faults: list[FaultRecord],
    *,
    t0: float,
    end: float,
    acked: list[tuple[int, int, int, float]],
    arrivals: Mapping[int, Mapping[int, Mapping[int, float]]],
    conv_devices: Mapping[int, list[int]],
    down: set[int],
    refusals: list[tuple[str, float, float, str]],
    probes: list[tuple[float, str, int]],
    within: float,
) -> list[dict[str, Any]]:
    """One entry for the steady traffic before the first fault, then one per fault."""
    late = late_messages(faults, acked, arrivals, conv_devices, down, within)
    in_window = acked_per_window(faults, acked)
    empty = {"messages": 0, "late": 0, "late_pairs": 0, "missing": 0}

    def answers(start: float, stop: float) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind, _, answered_at, code in refusals:
            if start <= answered_at < stop:
                key = f"{kind}:{code}"
                counts[key] = counts.get(key, 0) + 1
        return counts

    def after_recovery(recovered: float, stop: float) -> dict[str, Any]:
        # Sent after the recovery and answered before the next fault: what the next
        # fault caused is the next fault's.
        answered = [
            answered_at
            for _, sent_at, answered_at, code in refusals
            if recovered <= sent_at and answered_at < stop and code in SERVER_FAULT_CODES
        ]
        rest: dict[str, int] = {}
        last = max(answered, default=None)
        for sent_at, name, status in probes:
            if recovered <= sent_at < stop and (status == 0 or status >= 500):
                rest[name] = rest.get(name, 0) + 1
                last = sent_at if last is None else max(last, sent_at)
        return {
            "total": len(answered) + sum(rest.values()),
            "socket": len(answered),
            "rest": rest,
            # Seconds after the recovery when the last of them came.
            "last_s": None if last is None else round(last - recovered, 2),
        }

    def entry(name: str, window: int | None, start: float, stop: float) -> dict[str, Any]:
        refused = answers(start, stop)
        counts = late.get(window, empty)
        return {
            "name": name,
            "at_s": round(start - t0, 1),
            "window_s": round(stop - start, 1),
            "sends_unavailable": refused.get("send:unavailable", 0),
            "sends_timeout": refused.get("send:timeout", 0),
            "sends_unanswered": refused.get("send:no_answer", 0),
            "refused": refused,
            "acked": in_window.get(window, 0),
            "judged": counts["messages"],
            "late_messages": counts["late"],
            "late_deliveries": counts["late_pairs"],
            "missing_deliveries": counts["missing"],
        }

    first = faults[0].injected_at if faults else end
    # Before any fault, every server answer of the 5xx kind counts.
    entries = [{**entry("steady", None, t0, first), "errors_5xx": after_recovery(t0, first)}]
    for i, fault in enumerate(faults):
        start, stop = _window(faults, i, end)
        recovered = fault.recovered_at
        restarted = fault.restarted_at
        entries.append(
            {
                **entry(fault.name, i, start, stop),
                "what": FAULTS.get(fault.name, fault.name),
                "down_s": None if restarted is None else round(restarted - start, 2),
                "recover_s": None if recovered is None else round(recovered - start, 2),
                "errors_5xx_after_recovery": None
                if recovered is None
                else after_recovery(recovered, stop),
                "error": fault.error,
            }
        )
    return entries
