"""CPU and memory of processes and of the machine, read with psutil.

CPU time is user + system time of a process and of its descendants that are
alive when sampled (a server that forks helpers is counted whole). Processes
the bench did not start (a running stack, Redis, RabbitMQ) are found by the
TCP port they listen on.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import psutil

CPUS = psutil.cpu_count() or 1


def _own_usage(process: psutil.Process) -> tuple[float, int]:
    """(CPU seconds, RSS KiB) of one process, without its children's."""
    times = process.cpu_times()
    return times.user + times.system, process.memory_info().rss // 1024


def tree_usage(pid: int, descendants: bool = True) -> tuple[float, int] | None:
    """(CPU seconds, RSS KiB) of a process and its live descendants; None if it is gone."""
    try:
        process = psutil.Process(pid)
        cpu, rss = _own_usage(process)
        family = process.children(recursive=True) if descendants else []
    except psutil.Error:
        return None
    for child in family:
        # A helper may exit between being listed and being read.
        with contextlib.suppress(psutil.Error):
            child_cpu, child_rss = _own_usage(child)
            cpu += child_cpu
            rss += child_rss
    return cpu, rss


def machine_busy() -> tuple[float, float]:
    """(busy seconds, total seconds) over all CPUs since boot; waiting for I/O counts as idle."""
    times = psutil.cpu_times()
    # Guest time is already part of user time: adding it would count it twice. Each figure is
    # a sum of counters that only grow (not a difference), so a later reading is never smaller.
    busy = sum(
        getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal")
    )
    return busy, busy + times.idle + getattr(times, "iowait", 0.0)


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages, to the two decimals the kernel prints."""
    return [round(load, 2) for load in psutil.getloadavg()]


def pid_listening_on(port: int) -> int | None:
    """The process that listens on a local TCP port, or None (not found or not visible)."""
    with contextlib.suppress(psutil.Error):
        for connection in psutil.net_connections(kind="tcp"):
            if (
                connection.status == psutil.CONN_LISTEN
                and connection.laddr
                and connection.laddr.port == port
                and connection.pid is not None
            ):
                return connection.pid
    return None


@dataclass
class Usage:
    """A process's CPU% over a window and its RSS at the start, end and peak of it."""

    pid: int
    cpu_pct: float
    rss_start_kb: int
    rss_end_kb: int
    rss_max_kb: int
    alive: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "cpu_pct": round(self.cpu_pct, 1),
            "rss_mb": round(self.rss_end_kb / 1024, 1),
            "rss_start_mb": round(self.rss_start_kb / 1024, 1),
            "rss_max_mb": round(self.rss_max_kb / 1024, 1),
            "alive": self.alive,
        }


@dataclass
class Mark:
    """The start of a measurement window."""

    at: float
    cpu: dict[str, float]
    rss: dict[str, int]
    rss_max: dict[str, int]
    machine: tuple[float, float]
    load: list[float]


@dataclass
class Sampler:
    """Reads named processes now and then; `mark()` opens a window, `usage(mark)` closes it."""

    pids: dict[str, int]
    # Measured without their descendants (the coordinator, whose children are the rest).
    alone: set[str] = field(default_factory=set)
    cpu: dict[str, float] = field(default_factory=dict)
    rss: dict[str, int] = field(default_factory=dict)
    alive: dict[str, bool] = field(default_factory=dict)
    # CPU% over the last interval between two samples, for the progress line.
    recent: dict[str, float] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)
    # CPU seconds of the earlier processes of a role that was restarted (chaos).
    offset: dict[str, float] = field(default_factory=dict)
    _last: float = 0.0

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self.alive.pop(name, None)

    def replace(self, name: str, pid: int) -> None:
        """A role's process was restarted: follow the new one, its CPU added to the old's."""
        if self.pids.get(name) == pid:
            return
        self.offset[name] = self.cpu.get(name, self.offset.get(name, 0.0))
        self.add(name, pid)

    def sample(self) -> None:
        now = time.monotonic()
        elapsed = now - self._last if self._last else 0.0
        self._last = now
        for name, pid in self.pids.items():
            if self.alive.get(name) is False:
                continue
            usage = tree_usage(pid, descendants=name not in self.alone)
            if usage is None:
                self.alive[name] = False
                self.recent[name] = 0.0
                continue
            cpu, rss = usage
            cpu += self.offset.get(name, 0.0)
            if name in self.cpu and elapsed > 0:
                self.recent[name] = 100.0 * (cpu - self.cpu[name]) / elapsed
            self.cpu[name], self.rss[name] = cpu, rss
            self.alive[name] = True
            for mark in self.marks:
                mark.cpu.setdefault(name, cpu)
                mark.rss.setdefault(name, rss)
                mark.rss_max[name] = max(mark.rss_max.get(name, 0), rss)

    def mark(self) -> Mark:
        self.sample()
        mark = Mark(
            time.monotonic(),
            dict(self.cpu),
            dict(self.rss),
            dict(self.rss),
            machine_busy(),
            loadavg(),
        )
        self.marks.append(mark)
        return mark

    def usage(self, mark: Mark) -> tuple[dict[str, Usage], float, float]:
        """Per process usage since `mark`, machine CPU% (all cores) and seconds elapsed."""
        self.sample()
        if mark in self.marks:
            self.marks.remove(mark)
        elapsed = max(1e-6, time.monotonic() - mark.at)
        result = {
            name: Usage(
                pid=self.pids[name],
                cpu_pct=100.0 * (self.cpu[name] - mark.cpu[name]) / elapsed,
                rss_start_kb=mark.rss[name],
                rss_end_kb=self.rss[name],
                rss_max_kb=mark.rss_max.get(name, self.rss[name]),
                alive=bool(self.alive.get(name)),
            )
            for name in self.pids
            if name in mark.cpu and name in self.cpu
        }
        busy, total = machine_busy()
        spent = total - mark.machine[1]
        machine = 100.0 * (busy - mark.machine[0]) / spent if spent > 0 else 0.0
        return result, machine, elapsed
