"""The benchmark's arithmetic (percentiles, the delivery accounting behind `lost` and gaps)
and its process statistics."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from chatbench.histogram import Histogram
from chatbench.plan import WorkerResult
from chatbench.procstat import Sampler, loadavg, machine_busy, pid_listening_on, tree_usage
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
    acked: list[tuple[int, int, int, float]],
    held: dict[int, dict[int, list[int]]],
    down: list[int],
) -> WorkerResult:
    return WorkerResult(0, {}, {}, {}, acked, held, down, [], {})


def test_lost_counts_acknowledged_messages_a_connected_device_never_got() -> None:
    # Conversation 0 (base seq 10) has devices 1, 2 and 3; device 1 sent seqs 11-13.
    acked = [(0, 11, 1, 0.0), (0, 12, 1, 0.0), (0, 13, 1, 0.0)]
    held = {1: {0: [11, 12, 13]}, 2: {0: [11, 13]}, 3: {0: [11, 12, 13]}}
    accounting = delivery_accounting([_result(acked, held, [])], {0: [1, 2, 3]}, [10])
    assert accounting == {
        "lost": 1,
        "lost_messages": 1,
        "seq_gaps": 1,
        "devices_down": 0,
        "reused_seqs": 0,
    }


def test_devices_down_at_the_end_are_not_counted_as_losing_messages() -> None:
    acked = [(0, 1, 1, 0.0)]
    held = {1: {0: [1]}}
    accounting = delivery_accounting([_result(acked, held, [2])], {0: [1, 2]}, [0])
    assert accounting["lost"] == 0
    assert accounting["devices_down"] == 1


def test_a_seq_acknowledged_for_two_messages_is_counted_as_reused() -> None:
    # Devices 1 and 2 were both told seq 5: the store gave it twice.
    acked = [(0, 5, 1, 1.0), (0, 5, 2, 2.0), (0, 6, 1, 3.0)]
    held = {1: {0: [5, 6]}, 2: {0: [5, 6]}}
    accounting = delivery_accounting([_result(acked, held, [])], {0: [1, 2]}, [4])
    assert accounting["reused_seqs"] == 1


# A child that spends CPU until it has used `BURN_S` seconds of it, then sleeps: it
# measures its own CPU time, so the test holds however busy the machine is.
BURN_S = 0.3
# The kernel counts a process's CPU time in clock ticks (usually hundredths of a second).
TICK_SLACK_S = 0.02
BURNER = (
    "import time\n"
    f"while time.process_time() < {BURN_S}: pass\n"
    "print('burnt', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def burner() -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-c", BURNER], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            yield child
        finally:
            child.kill()


def test_process_usage_counts_live_descendants(burner: subprocess.Popen[str]) -> None:
    assert burner.stdout is not None
    assert burner.stdout.readline() == "burnt\n"
    child = tree_usage(burner.pid)
    assert child is not None
    child_cpu, child_rss = child
    assert child_cpu >= BURN_S - TICK_SLACK_S
    assert child_rss > 1024  # KiB: an interpreter holds megabytes
    whole, alone = tree_usage(os.getpid()), tree_usage(os.getpid(), descendants=False)
    assert whole is not None
    assert alone is not None
    assert whole[0] - alone[0] >= BURN_S - TICK_SLACK_S
    assert whole[1] - alone[1] >= child_rss // 2

    burner.kill()
    burner.wait()
    assert tree_usage(burner.pid) is None


def test_sampler_windows_report_cpu_rss_and_death(burner: subprocess.Popen[str]) -> None:
    sampler = Sampler({"burner": burner.pid})
    window = sampler.mark()
    assert burner.stdout is not None
    assert burner.stdout.readline() == "burnt\n"
    usage, machine_pct, seconds = sampler.usage(window)
    burnt = usage["burner"]
    # The CPU it burnt after the mark, over at most the seconds the window lasted.
    assert burnt.cpu_pct > 0
    assert burnt.cpu_pct <= 100.0 * BURN_S / seconds * 1.5 + 5
    assert 0 < burnt.rss_start_kb <= burnt.rss_max_kb
    assert burnt.rss_end_kb <= burnt.rss_max_kb
    assert burnt.alive
    assert 0 <= machine_pct <= 100
    assert set(burnt.as_dict()) == {
        "pid",
        "cpu_pct",
        "rss_mb",
        "rss_start_mb",
        "rss_max_mb",
        "alive",
    }

    burner.kill()
    burner.wait()
    after = sampler.mark()
    usage, _, _ = sampler.usage(after)
    assert usage["burner"].alive is False


def test_a_restarted_role_keeps_counting_cpu_from_where_its_old_process_stopped(
    burner: subprocess.Popen[str],
) -> None:
    sampler = Sampler({"service": burner.pid})
    assert burner.stdout is not None
    assert burner.stdout.readline() == "burnt\n"
    sampler.sample()
    before = sampler.cpu["service"]
    assert before >= BURN_S - TICK_SLACK_S
    # The service "restarts" as another process: its CPU adds to what the first one used.
    sampler.replace("service", os.getpid())
    sampler.sample()
    assert sampler.cpu["service"] > before
    assert sampler.pids["service"] == os.getpid()
    assert sampler.alive["service"]


def test_machine_figures() -> None:
    busy, total = machine_busy()
    assert 0 < busy < total
    time.sleep(0.05)
    later_busy, later_total = machine_busy()
    assert later_busy >= busy
    assert later_total > total
    load = loadavg()
    assert len(load) == 3
    assert all(value >= 0 for value in load)


def test_the_process_listening_on_a_port_is_found() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert pid_listening_on(port) == os.getpid()
    assert pid_listening_on(port) is None
