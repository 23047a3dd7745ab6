"""CPU and memory of processes, from /proc: no psutil needed on Linux.

CPU time is utime + stime of a process and of its descendants that are alive
when sampled (a server that forks helpers is counted whole). Processes the
bench did not start (a running stack, Redis, RabbitMQ) are found by the TCP
port they listen on: /proc/net/tcp gives the socket inode, /proc/*/fd the
process holding it.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
CPUS = os.cpu_count() or 1


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                found.extend(int(x) for x in text.split())
    return found


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    return tree


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, in seconds; None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return 0


def tree_usage(pid: int, descendants: bool = True) -> tuple[float, int] | None:
    """(CPU seconds, RSS KiB) of a process and its live descendants; None if it is gone."""
    own = cpu_seconds(pid)
    if own is None:
        return None
    cpu, rss = own, rss_kb(pid) or 0
    if not descendants:
        return cpu, rss
    for child in process_tree(pid)[1:]:
        cpu += cpu_seconds(child) or 0.0
        rss += rss_kb(child) or 0
    return cpu, rss


def machine_busy() -> tuple[float, float]:
    """(busy seconds, total seconds) over all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return (total - idle) / TICKS, total / TICKS


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                local, state, inode = parts[1], parts[3], parts[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    return inodes


def pid_listening_on(port: int) -> int | None:
    """The process that listens on a local TCP port, or None (not found or not visible)."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/fd/{fd}") in wanted:
                        return int(entry)
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
    _last: float = 0.0

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self.alive.pop(name, None)

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
