"""The benchmark's arithmetic: percentiles and the delivery accounting behind `lost` and gaps."""

from __future__ import annotations

import random

import pytest
from chatbench.histogram import Histogram
from chatbench.plan import WorkerResult
from chatbench.report import delivery_accounting


def test_percentiles_are_within_one_percent_of_the_exact_ones() -> None:
    rng = random.Random(7)
    samples = [rng.lognormvariate(-5, 1) for _ in range(20_000)]
    histogram = Histogram()
    for seconds in samples:
        histogram.record(seconds)
    ordered = sorted(samples)
    for q in (50, 90, 99):
        exact_ms = ordered[int(len(ordered) * q / 100) - 1] * 1000
        assert histogram.percentile(q) == pytest.approx(exact_ms, rel=0.01)
    assert histogram.percentile(100) == pytest.approx(max(samples) * 1000)
    assert histogram.count == len(samples)


def test_histograms_merge_by_adding_counts() -> None:
    a, b, both = Histogram(), Histogram(), Histogram()
    for i in range(1, 1001):
        (a if i % 2 else b).record(i / 1000)
        both.record(i / 1000)
    merged = Histogram.from_wire(a.to_wire()).merge(b)
    assert merged.summary() == both.summary()
    assert Histogram().summary()["count"] == 0


def _result(
    acked: list[tuple[int, int, int]], held: dict[int, dict[int, list[int]]], down: list[int]
) -> WorkerResult:
    return WorkerResult(0, {}, {}, {}, acked, held, down, [], {})


def test_lost_counts_acknowledged_messages_a_connected_device_never_got() -> None:
    # Conversation 0 (base seq 10) has devices 1, 2 and 3; device 1 sent seqs 11-13.
    acked = [(0, 11, 1), (0, 12, 1), (0, 13, 1)]
    held = {1: {0: [11, 12, 13]}, 2: {0: [11, 13]}, 3: {0: [11, 12, 13]}}
    accounting = delivery_accounting([_result(acked, held, [])], {0: [1, 2, 3]}, [10])
    assert accounting == {"lost": 1, "lost_messages": 1, "seq_gaps": 1, "devices_down": 0}


def test_devices_down_at_the_end_are_not_counted_as_losing_messages() -> None:
    acked = [(0, 1, 1)]
    held = {1: {0: [1]}}
    accounting = delivery_accounting([_result(acked, held, [2])], {0: [1, 2]}, [0])
    assert accounting == {"lost": 0, "lost_messages": 0, "seq_gaps": 0, "devices_down": 1}
