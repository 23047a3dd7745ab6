"""What a generator process is told to do, and what it reports back (plain picklable data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DeviceSpec:
    index: int  # global device number, unique in the scenario
    user: int  # user index in the population
    token: str
    gateways: list[str]  # Socket.IO URLs, the one to use first at the head


@dataclass
class WorkerPlan:
    worker: int
    workers: int
    tag: str  # prefix of every client_msg_id of this scenario run
    devices: list[DeviceSpec]
    conv_ids: list[str]  # conversation index -> id
    conv_base: list[int]  # last seq of each conversation before the scenario
    user_convs: dict[int, list[int]]  # user index -> conversation indices
    conv_devices: list[int]  # devices (in the whole scenario) per conversation
    send_slots: list[tuple[int, int]]  # (device index, conversation index) this worker sends from
    rate: float  # offered messages/s of the whole scenario (all workers)
    duration: float
    warmup: float
    size: int
    ack_timeout: float
    connect_timeout: float
    connect_concurrency: int
    reconnect_jitter: float
    seed: int
    use_uvloop: bool = True
    # A refused or unanswered send is retried until it is this many seconds past due.
    give_up_after: float = 60.0
    # Send answers slower than this are counted (`slow_answers`).
    answer_within: float = 2.0
    # `sync:required` is answered within uniform(0, this) seconds.
    sync_spread: float = 2.0
    # Keep when each device got each message (chaos judges delivery times per fault).
    record_arrivals: bool = False


@dataclass
class DeviceFate:
    """A device that lost its connection: when, and when it was back and synced."""

    index: int
    disconnected_at: float
    reconnected_at: float | None
    synced_at: float | None
    gateway: str


@dataclass
class WorkerResult:
    worker: int
    hists: dict[str, Any]  # name -> Histogram wire
    counters: dict[str, int]
    errors: dict[str, int]
    acked: list[tuple[int, int, int, float]]  # (conversation, seq, sender device, acked at)
    held: dict[int, dict[int, list[int]]]  # device -> conversation -> seqs held
    down: list[int]  # devices not connected at the end
    fates: list[DeviceFate]
    times: dict[str, float]
    # (kind, sent at, answered at, code) of each refused or unanswered attempt.
    refusals: list[tuple[str, float, float, str]] = field(default_factory=list)
    # Second of the run -> send answers by outcome ("ok" or the error code).
    timeline: dict[int, dict[str, int]] = field(default_factory=dict)
    # Device -> conversation -> seq -> when it arrived (only with `record_arrivals`).
    arrivals: dict[int, dict[int, dict[int, float]]] = field(default_factory=dict)
