"""Prometheus scrape config, alerting rules and the Grafana dashboard.

Structure is checked by reading the files; PromQL and the alerts' behaviour
by Debian's promtool (`promtool check` and the rule unit tests in
deploy/prometheus/alerts.test.yml). The test fails, never skips, when
promtool is missing.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import metric_names
import pytest
import yaml
from system_commands import system_command

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
PROMETHEUS_YML = PROMETHEUS_DIR / "prometheus.yml"
ALERTS_YML = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST_YML = PROMETHEUS_DIR / "alerts.test.yml"
PROMETHEUS_RULE = REPO / "k8s" / "components" / "monitoring" / "prometheusrule.yaml"
GRAFANA_DIR = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))

SERIES = re.compile(r"(?<![\w:])(chat_[a-z0-9_]+)")


def promtool() -> str:
    return system_command(
        "promtool", "prometheus", "these tests check the Prometheus rules and queries with it"
    )


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS_YML)["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def series_in(expr: str) -> set[str]:
    """chat_* series a PromQL expression reads (recording-rule names, which contain ':', aside)."""
    return set(SERIES.findall(expr))


# --- scrape configuration ---


def test_every_service_is_scraped_with_dns_discovery() -> None:
    config = load_yaml(PROMETHEUS_YML)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for service, port in {"auth": 8001, "message": 8002, "gateway": 8100}.items():
        (sd,) = jobs[service]["dns_sd_configs"]
        # One A lookup returns every replica, each scraped as its own target.
        assert sd == {"names": [service], "type": "A", "port": port, "refresh_interval": "15s"}
        assert jobs[service].get("metrics_path", "/metrics") == "/metrics"
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_promtool_accepts_the_config(tmp_path: Path) -> None:
    # The config names the rule file by its path inside the container.
    text = PROMETHEUS_YML.read_text().replace("/etc/prometheus/alerts.yml", str(ALERTS_YML))
    config = tmp_path / "prometheus.yml"
    config.write_text(text)
    result = run_promtool("check", "config", "--syntax-only", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


# --- alerting rules ---


def test_promtool_accepts_the_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS_YML))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", str(ALERTS_TEST_YML))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_unit_test() -> None:
    fired = {
        case["alertname"]
        for test in load_yaml(ALERTS_TEST_YML)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {alert["alert"] for alert in alerts()} <= fired


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_alert_is_complete(alert: dict[str, Any]) -> None:
    assert alert["alert"].startswith("Chat")
    assert alert["expr"].strip()
    assert re.fullmatch(r"\d+[smh]", alert["for"])
    assert alert["labels"]["severity"] in {"warning", "critical"}
    assert alert["annotations"]["summary"].strip()
    assert alert["annotations"]["description"].strip()


def test_rules_use_only_exported_metrics() -> None:
    known = metric_names.series_names()
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for rule in rules():
        expr = rule["expr"]
        used = series_in(expr)
        assert used <= known, f"{rule.get('alert') or rule.get('record')}: unknown {used - known}"
        # Each rule reads a service metric, a recorded series built from them,
        # or `up` for the scrape itself.
        assert used or any(name in expr for name in recorded) or re.search(r"\bup\{", expr)


def test_the_operations_alerts_exist() -> None:
    by_metric: dict[str, list[str]] = {}
    recorded = {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}
    for alert in alerts():
        expr = alert["expr"]
        for name, definition in recorded.items():
            if name in expr:
                expr += definition
        for series in series_in(expr):
            by_metric.setdefault(metric_names.base_name(series), []).append(alert["alert"])
    assert "chat_gateway_ready" in by_metric  # a gateway not ready
    assert "chat_consumer_event_lag_seconds" in by_metric  # consumers falling behind
    assert "chat_gateway_fanout_seconds" in by_metric  # delivery p99
    assert "chat_outbox_pending" in by_metric  # outbox growing
    # The 5xx rate covers every HTTP service.
    for service in metric_names.SERVICES_WITH_HTTP:
        assert f"chat_{service}_http_request_duration_seconds" in by_metric
    assert any('status=~"5.."' in alert["expr"] for alert in alerts())


def test_kubernetes_rules_are_the_same_rules() -> None:
    rule = load_yaml(PROMETHEUS_RULE)
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == load_yaml(ALERTS_YML)["groups"], (
        "k8s/components/monitoring/prometheusrule.yaml differs from deploy/prometheus/alerts.yml"
    )


# --- Grafana ---


def test_grafana_provisioning() -> None:
    datasources = load_yaml(GRAFANA_DIR / "provisioning/datasources/prometheus.yml")
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    providers = load_yaml(GRAFANA_DIR / "provisioning/dashboards/chat.yml")["providers"]
    assert [p["type"] for p in providers] == ["file"]
    assert DASHBOARDS, "no dashboard JSON in deploy/grafana/dashboards"


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return [panel for panel in found if panel["type"] != "row"]


def dashboard_exprs() -> list[str]:
    exprs: list[str] = []
    for path in DASHBOARDS:
        for panel in panels(json.loads(path.read_text())):
            exprs.extend(target["expr"] for target in panel["targets"])
    return exprs


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    uid = load_yaml(GRAFANA_DIR / "provisioning/datasources/prometheus.yml")["datasources"][0][
        "uid"
    ]
    assert dashboard["uid"]
    assert dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels(dashboard):
        assert panel["title"], panel
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_dashboard_queries_use_exported_metrics() -> None:
    known = metric_names.series_names()
    for expr in dashboard_exprs():
        used = series_in(expr)
        assert used, f"a panel reads no chat metric: {expr}"
        assert used <= known, f"unknown metrics {used - known} in {expr}"


def test_dashboard_shows_the_key_metrics() -> None:
    shown = {metric_names.base_name(s) for expr in dashboard_exprs() for s in series_in(expr)}
    key = {
        "chat_gateway_connections",
        "chat_message_messages_stored_total",
        "chat_gateway_fanout_seconds",
        "chat_consumer_event_lag_seconds",
        "chat_gateway_rate_limited_total",
        "chat_gateway_dropped_signals_total",
        "chat_outbox_pending",
        *(f"chat_{s}_http_request_duration_seconds" for s in metric_names.SERVICES_WITH_HTTP),
    }
    assert key <= shown, f"not on the dashboard: {key - shown}"
    exprs = "\n".join(dashboard_exprs())
    # Fan-out latency as p50 and p99.
    assert re.search(
        r"histogram_quantile\(0\.5\d*, [^\n]*chat_gateway_fanout_seconds_bucket", exprs
    )
    assert re.search(r"histogram_quantile\(0\.99, [^\n]*chat_gateway_fanout_seconds_bucket", exprs)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses PromQL in rule files: wrap each panel query in a
    # recording rule, with Grafana's interval variable made concrete.
    exprs = [expr.replace("$__rate_interval", "5m") for expr in dashboard_exprs()]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "dashboard",
                        "rules": [
                            {"record": f"dashboard:query_{i}", "expr": expr}
                            for i, expr in enumerate(exprs)
                        ],
                    }
                ]
            }
        )
    )
    result = run_promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr


# --- the names against the code that exports them ---


def test_metric_names_are_defined_by_the_services() -> None:
    """Every metric the dashboards and alerts read is declared somewhere in the code.

    The per-service HTTP histograms are named by a helper in libs/platform
    (chat_{service}_http_request_duration_seconds); the rest appear literally.
    """
    sources = "\n".join(
        path.read_text()
        for root in ("libs", "services")
        for path in (REPO / root).glob("*/src/**/*.py")
    )
    assert "_http_request_duration_seconds" in sources
    missing = [
        name
        for name in metric_names.METRICS
        if not name.endswith("_http_request_duration_seconds") and f'"{name}"' not in sources
    ]
    assert not missing, f"no service declares {missing}"
