"""Latency histograms with bounded memory: logarithmic buckets of 1 % width.

A run at 500 messages/s for minutes records millions of deliveries; keeping
every sample would cost memory and pickling between processes. Buckets of
1 % relative width keep each percentile within 1 % of the exact value, and
the exact minimum and maximum are kept on the side. Histograms merge by
adding counts, so each generator process records its own and the
coordinator adds them up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Values are recorded in microseconds; a bucket spans a factor of e^(1/100) ~ 1 %.
_PER_E = 100.0


def _bucket(micros: float) -> int:
    if micros < 1.0:
        return 0
    return int(math.log(micros) * _PER_E) + 1


def _bucket_value(index: int) -> float:
    """The geometric middle of a bucket, in microseconds."""
    if index <= 0:
        return 0.5
    return math.exp((index - 0.5) / _PER_E)


@dataclass
class Histogram:
    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total: float = 0.0
    min: float = math.inf
    max: float = 0.0

    def record(self, seconds: float) -> None:
        micros = seconds * 1e6
        if micros < 0.0:
            # Clocks of different processes agree on one machine; a negative value can
            # only be rounding, so count it as zero rather than dropping it.
            micros = 0.0
        index = _bucket(micros)
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1
        self.count += 1
        self.total += micros
        if micros < self.min:
            self.min = micros
        if micros > self.max:
            self.max = micros

    def merge(self, other: Histogram) -> Histogram:
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        return self

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100) in milliseconds; 0 when empty."""
        if not self.count:
            return 0.0
        if q >= 100.0:
            return self.max / 1000.0
        rank = max(1, math.ceil(self.count * q / 100.0))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                value = min(max(_bucket_value(index), self.min), self.max)
                return value / 1000.0
        return self.max / 1000.0

    def summary(self) -> dict[str, Any]:
        """p50/p90/p99/max (and mean) in milliseconds, rounded for the report."""
        if not self.count:
            return {"count": 0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
        return {
            "count": self.count,
            "p50": round(self.percentile(50), 3),
            "p90": round(self.percentile(90), 3),
            "p99": round(self.percentile(99), 3),
            "max": round(self.max / 1000.0, 3),
            "mean": round(self.total / self.count / 1000.0, 3),
        }

    def to_wire(self) -> tuple[dict[int, int], int, float, float, float]:
        return (self.counts, self.count, self.total, self.min, self.max)

    @classmethod
    def from_wire(cls, wire: tuple[dict[int, int], int, float, float, float]) -> Histogram:
        counts, count, total, low, high = wire
        return cls(dict(counts), count, total, low, high)
