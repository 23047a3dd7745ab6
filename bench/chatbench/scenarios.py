"""The scenarios, their presets (the sizes of the issue's targets) and the targets themselves."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

SCENARIOS = ("direct", "group", "idle", "storm", "chaos")
# The chaos scenario's faults, in order (chaos.FAULTS says what each does).
ALL_FAULTS = "redis,rabbitmq,message,gateway,auth,mongodb"


@dataclass(frozen=True)
class Config:
    scenario: str
    rate: float = 0.0  # offered messages/s, whole scenario
    duration: float = 10.0  # seconds of sending (idle: of holding the connections)
    warmup: float = 0.0  # first seconds of sending left out of the latency figures
    users: int = 200
    devices: int = 1  # devices per user (direct, group)
    convs_per_user: int = 2  # direct conversations per user (direct, storm)
    groups: int = 1
    members: int = 100
    connections: int = 0  # idle: connections in all
    clients: int = 0  # storm: connected clients in all
    kill_after: float = 3.0  # storm: seconds after the first send
    reconnect_jitter: float = 1.0  # storm: a dropped client waits uniform(0, this) s
    sync_timeout: float = 30.0  # storm: give up waiting for every client to sync
    workers: int = 1  # generator processes
    size: int = 100  # characters of message text
    ack_timeout: float = 15.0  # above the gateway's own command timeout (10 s)
    drain_timeout: float = 10.0  # after the last send, wait at most this for deliveries
    connect_timeout: float = 15.0
    connect_concurrency: int = 100  # per generator process
    max_lag_ms: float = 5.0  # send lag p99 above this: the generator is the bottleneck
    max_generator_cpu: float = 85.0  # % of one core, per generator process
    seed: int = 1
    fresh_gateways: bool = True  # idle, own stack: restart gateways for a clean RSS baseline
    # How a client answers refusals (CONTRACT §7.1): every scenario retries `unavailable`
    # after retry_after and `timeout` at once, until a message is this late.
    give_up_after: float = 60.0
    answer_within: float = 2.0  # send answers slower than this are counted as slow
    sync_spread: float = 2.0  # `sync:required` is answered within uniform(0, this) s
    drop: bool = True  # idle: then drop every connection at once (a disconnect storm)
    offline_timeout: float = 90.0  # idle: give up waiting for every user to read offline
    faults: str = ALL_FAULTS  # chaos: which, in order
    fault_lead: float = 5.0  # chaos: steady traffic before the first fault
    fault_down: float = 2.0  # chaos: seconds a component stays down
    fault_gap: float = 15.0  # chaos: steady traffic after each recovery
    recover_timeout: float = 90.0  # chaos: give up waiting for a recovery
    deliver_within: float = 10.0  # chaos: an acked message is late on a device after this

    @property
    def label(self) -> str:
        if self.scenario in ("direct", "group", "chaos"):
            return f"{self.scenario}@{self.rate:g}/s"
        if self.scenario == "idle":
            return f"idle@{self.connections}"
        return f"storm@{self.clients}"

    def describe(self) -> str:
        if self.scenario == "direct":
            return (
                f"{self.users} users x {self.devices} devices, {self.convs_per_user} direct "
                f"conversations each, {self.rate:g} msg/s for {self.duration:g} s "
                f"(warm-up {self.warmup:g} s), {self.workers} generator process(es)"
            )
        if self.scenario == "group":
            return (
                f"{self.groups} group(s) of {self.members} members x {self.devices} devices, "
                f"{self.rate:g} msg/s for {self.duration:g} s (warm-up {self.warmup:g} s), "
                f"{self.workers} generator process(es)"
            )
        if self.scenario == "idle":
            dropped = ", then all dropped at once" if self.drop else ""
            return (
                f"{self.connections} idle connections of {self.users} users, held "
                f"{self.duration:g} s{dropped}, {self.workers} generator process(es)"
            )
        if self.scenario == "chaos":
            return (
                f"{self.users} users x {self.devices} devices, {self.convs_per_user} direct "
                f"conversations each, {self.rate:g} msg/s; faults {self.faults}, each down "
                f"{self.fault_down:g} s, {self.fault_gap:g} s apart after recovery "
                f"({self.fault_lead:g} s before the first); private Redis and RabbitMQ"
            )
        return (
            f"{self.clients} clients of {self.users} users, {self.rate:g} msg/s, one gateway "
            f"SIGKILLed {self.kill_after:g} s in, reconnect delay uniform(0, "
            f"{self.reconnect_jitter:g}) s, {self.workers} generator process(es)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# The sizes of the targets. `make bench` runs ALL in this order.
PRESETS: dict[str, Config] = {
    "direct": Config(
        "direct", rate=500, duration=60, warmup=2, users=200, devices=2, convs_per_user=2
    ),
    "group": Config("group", rate=20, duration=60, warmup=2, groups=1, members=100, devices=1),
    "idle": Config("idle", duration=10, users=200, connections=5000, workers=2),
    "storm": Config(
        "storm", rate=50, duration=15, users=200, clients=2000, kill_after=3, workers=2
    ),
    "chaos": Config("chaos", rate=50, users=100, devices=2, convs_per_user=2, workers=1),
}
ALL: list[tuple[str, dict[str, Any]]] = [
    ("direct", {"rate": 50, "duration": 30}),
    ("direct", {}),
    ("group", {}),
    ("idle", {}),
    ("storm", {}),
]


def configure(scenario: str, preset_overrides: dict[str, Any], flags: dict[str, Any]) -> Config:
    """The preset, then the suite's own changes (ALL), then the command line's flags."""
    config = replace(PRESETS[scenario], **preset_overrides)
    known = {f.name for f in fields(Config)}
    return replace(config, **{k: v for k, v in flags.items() if k in known and v is not None})


@dataclass
class Target:
    name: str
    op: str  # "<=" or ">="
    limit: float
    value: float | None
    ok: bool | None  # None: not measurable in this run

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "limit": self.limit,
            "value": self.value,
            "ok": self.ok,
        }


def _at_most(name: str, limit: float, value: float | None) -> Target:
    return Target(name, "<=", limit, value, None if value is None else value <= limit)


def _at_least(name: str, limit: float, value: float | None) -> Target:
    return Target(name, ">=", limit, value, None if value is None else value >= limit)


def targets(config: Config, report: dict[str, Any]) -> list[Target]:
    """The issue's targets, checked against this run (whatever its size: see `target_size`)."""
    e2e = report.get("e2e_ms", {}).get("p99") if report.get("e2e_ms", {}).get("count") else None
    answers = report.get("answers", {})
    if config.scenario == "direct":
        limit = 20.0 if config.rate <= 50 else 100.0
        return [
            _at_most("e2e p99 ms", limit, e2e),
            _at_most("lost", 0, report["lost"]),
            _at_most("duplicates", 0, report["duplicates"]),
            _at_most("seq gaps", 0, report["seq_gaps"]),
            _at_most("never answered", 0, answers.get("never_answered")),
            _at_most(f"answers > {config.answer_within:g} s", 0, answers.get("slow")),
        ]
    if config.scenario == "chaos":
        checks = [
            _at_most("lost", 0, report["lost"]),
            _at_most("duplicate stores", 0, report["duplicate_stores"]),
            _at_most("reused seqs", 0, report["reused_seqs"]),
        ]
        for fault in report.get("chaos", {}).get("faults", [])[1:]:
            after = fault["errors_5xx_after_recovery"]
            checks.append(_at_most(f"{fault['name']}: late", 0, fault["late_messages"]))
            checks.append(
                _at_most(
                    f"{fault['name']}: 5xx after recovery",
                    0,
                    None if after is None else after["total"],
                )
            )
        return checks
    if config.scenario == "group":
        return [_at_most("e2e p99 ms", 100.0, e2e), _at_most("lost", 0, report["lost"])]
    if config.scenario == "idle":
        idle = report["idle"]
        return [
            _at_most("RSS KB per connection", 24.0, idle.get("rss_kb_per_connection")),
            _at_least("connections/s", 500.0, idle.get("connect_rate")),
        ]
    storm = report["storm"]
    return [
        _at_most("s until all synced", 10.0, storm.get("all_synced_s")),
        _at_most("lost", 0, report["lost"]),
        _at_most("sends shed in the storm", 0, storm.get("shed")),
    ]


def target_size(config: Config) -> bool:
    """Whether the run had the size the issue's targets are stated for."""
    if config.scenario == "direct":
        return config.users >= 200 and (
            config.rate == 50 or (config.rate >= 500 and config.duration >= 60)
        )
    if config.scenario == "group":
        return config.members >= 100 and config.rate >= 20
    if config.scenario == "idle":
        return config.connections >= 5000
    if config.scenario == "chaos":
        return config.rate >= 50 and set(config.faults.split(",")) >= set(ALL_FAULTS.split(","))
    return config.clients >= 2000
