"""`make bench` at a tiny size: every scenario runs and reports sane numbers.

The benchmark itself is not part of `make test`; this checks that it still
works against the current services: it starts its own stack (on the Redis,
RabbitMQ and MongoDB the test kit found, with a namespace and database of its
own), runs direct, group, idle and storm for a couple of seconds each with a
handful of users, and the JSON lines it prints must have every field, with
nothing lost at this load. A second run does chaos with two quick faults on
the private Redis and RabbitMQ it starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

TINY = [
    *("direct", "group", "idle", "storm"),
    *("--users", "6", "--members", "5", "--devices", "2"),
    *("--rate", "15", "--duration", "2", "--warmup", "0"),
    *("--connections", "30", "--clients", "20", "--kill-after", "1"),
    *("--reconnect-jitter", "0.5", "--drain-timeout", "8", "--workers", "2"),
    *("--json-out", ""),
]
CHAOS = [
    "chaos",
    *("--users", "4", "--rate", "5", "--faults", "redis,gateway"),
    *("--fault-lead", "1", "--fault-gap", "2", "--fault-down", "0.5", "--drain-timeout", "8"),
    *("--json-out", ""),
]

COMMON_FIELDS = {
    "scenario",
    "config",
    "setup",
    "offered_rate",
    "sent",
    "acked",
    "achieved_rate",
    "ack_ms",
    "e2e_ms",
    "send_lag_ms",
    "deliveries",
    "deliveries_per_s",
    "lost",
    "duplicates",
    "seq_gaps",
    "errors",
    "processes",
    "generator",
    "machine",
    "targets",
    "answers",
    "sync",
}


def _bench(args: list[str], env: dict[str, str], logs: Path) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "chatbench", *args, "--quiet", "--log-dir", str(logs)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            report = json.loads(line)
            found[report["scenario"]] = report
    return found


def _env(redis_url: str, amqp_url: str, mongodb_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "bench"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "REDIS_URL": redis_url,
        "AMQP_URL": amqp_url,
        "MONGODB_URL": mongodb_url,
    }


@pytest.fixture(scope="module")
def reports(
    redis_url: str, amqp_url: str, mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    logs = tmp_path_factory.mktemp("bench-logs")
    found = _bench(TINY, _env(redis_url, amqp_url, mongodb_url), logs)
    assert set(found) == {"direct", "group", "idle", "storm"}
    return found


@pytest.fixture(scope="module")
def chaos_report(
    redis_url: str, amqp_url: str, mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    logs = tmp_path_factory.mktemp("bench-chaos-logs")
    # Chaos starts its own Redis, RabbitMQ and database whatever the environment names.
    found = _bench(CHAOS, _env(redis_url, amqp_url, mongodb_url), logs)
    assert set(found) == {"chaos"}
    return found["chaos"]


def _latency(summary: dict[str, Any]) -> None:
    assert summary["count"] > 0
    assert 0 < summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["max"]
    assert summary["max"] < 10_000


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["direct", "group", "storm"])
def test_messaging_scenarios_report_sane_numbers(
    reports: dict[str, dict[str, Any]], scenario: str
) -> None:
    report = reports[scenario]
    assert set(report) >= COMMON_FIELDS
    assert report["sent"] == report["offered_rate"] * report["config"]["duration"]
    assert report["acked"] == report["sent"]
    assert report["stored"] == report["sent"]
    assert report["achieved_rate"] > 0
    _latency(report["ack_ms"])
    _latency(report["e2e_ms"])
    assert report["send_lag_ms"]["count"] == report["sent"]
    assert report["deliveries"] > 0
    assert report["deliveries_per_s"] > 0
    assert (report["lost"], report["duplicates"], report["seq_gaps"]) == (0, 0, 0)
    assert report["duplicate_stores"] == 0
    assert report["devices_down"] == 0
    assert report["deliveries"] + report["via_sync"] == report["expected_deliveries"]
    assert not [code for code in report["errors"] if not code.startswith("reconnect:")]
    assert report["answers"]["never_answered"] == 0
    assert report["answers"]["ms"]["count"] >= report["sent"]
    assert report["reused_seqs"] == 0
    for role in ("auth", "message", "gateway1", "gateway2", "generator1", "generator2"):
        assert report["processes"][role]["rss_mb"] > 0, role
    assert report["processes"]["message"]["cpu_pct"] > 0
    assert report["machine"]["cpus"] >= 1
    assert {t["name"] for t in report["targets"]}


@pytest.mark.slow
def test_group_fans_out_to_every_member(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["group"]
    members, devices = report["config"]["members"], report["config"]["devices"]
    # Every message reaches every device of every member but the sending one.
    assert report["deliveries"] == report["acked"] * (members * devices - 1)


@pytest.mark.slow
def test_idle_reports_memory_per_connection_and_connect_rate(
    reports: dict[str, dict[str, Any]],
) -> None:
    report = reports["idle"]
    idle = report["idle"]
    assert idle["connected"] == report["config"]["connections"]
    assert idle["connect_rate"] > 0
    assert idle["rss_kb_per_connection"] is not None
    assert report["connect_ms"]["count"] == idle["connected"]
    assert report["disconnects"] == 0
    assert {t["name"] for t in report["targets"]} == {"RSS KB per connection", "connections/s"}
    # Then every connection dropped at once, and every user read offline.
    drop = report["drop"]
    assert drop["dropped"] == idle["connected"]
    assert drop["online_before"] == drop["users"] == report["config"]["users"]
    assert drop["still_online"] == 0
    assert 0 < drop["all_offline_s"] < 60
    assert drop["gateway_error_lines"] == 0


@pytest.mark.slow
def test_storm_reconnects_and_syncs_every_dropped_client(
    reports: dict[str, dict[str, Any]],
) -> None:
    report = reports["storm"]
    storm = report["storm"]
    # Every client of the killed gateway dropped, and only those.
    assert 0 < storm["dropped_clients"] == storm["clients_on_killed_gateway"]
    assert storm["other_disconnects"] == 0
    assert storm["synced"] == storm["dropped_clients"]
    assert 0 < storm["all_synced_s"] < 30
    assert storm["all_reconnected_s"] <= storm["all_synced_s"]
    assert report["processes"]["gateway1"]["alive"] is False
    assert report["lost"] == 0
    sends = storm["sends"]
    assert storm["shed"] == sends["shed"] == sends["answers"].get("unavailable", 0)
    assert sends["offered_per_s"] == report["offered_rate"]


@pytest.mark.slow
def test_chaos_takes_components_down_and_judges_each_fault(chaos_report: dict[str, Any]) -> None:
    report = chaos_report
    chaos = report["chaos"]
    steady, *faults = chaos["faults"]
    assert steady["name"] == "steady"
    assert [f["name"] for f in faults] == ["redis", "gateway"]
    for fault in faults:
        assert fault["error"] is None, fault
        assert 0 < fault["down_s"] <= fault["recover_s"] < 60
        assert fault["errors_5xx_after_recovery"] is not None
        assert fault["judged"] >= 0
    assert sum(f["acked"] for f in chaos["faults"]) == report["acked"] > 0
    # The killed gateway's devices came back through the other one and synced.
    assert report["reconnects"] == report["disconnects"] > 0
    assert report["sync"]["syncs"] >= report["reconnects"]
    assert report["lost"] == 0
    assert report["devices_down"] == 0
    # Its own servers: not the machine's.
    private = report["stack"]["private_servers"]
    assert set(private) == {"redis", "rabbitmq"}
    assert private["redis"] != 6379
    assert private["rabbitmq"] != 5672
    assert {"redis: late", "gateway: 5xx after recovery"} <= {t["name"] for t in report["targets"]}
