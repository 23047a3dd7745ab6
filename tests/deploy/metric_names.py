"""The Prometheus metrics the services export, as dashboards and alerts may use them.

This is the operators' side of the contract in DESIGN §3 ("Metrics"); the
services define them (libs/platform and each service's metrics module).
"""

from __future__ import annotations

SERVICES_WITH_HTTP = ("auth", "message", "gateway")

# name -> type
METRICS: dict[str, str] = {
    **{f"chat_{s}_http_request_duration_seconds": "histogram" for s in SERVICES_WITH_HTTP},
    "chat_consumer_messages_total": "counter",
    "chat_consumer_handle_seconds": "histogram",
    "chat_consumer_event_lag_seconds": "histogram",
    "chat_events_published_total": "counter",
    "chat_outbox_pending": "gauge",
    "chat_gateway_connections": "gauge",
    "chat_gateway_events_total": "counter",
    "chat_gateway_fanout_seconds": "histogram",
    "chat_gateway_rate_limited_total": "counter",
    "chat_gateway_shed_sends_total": "counter",
    "chat_gateway_dropped_signals_total": "counter",
    "chat_gateway_sync_requests_total": "counter",
    "chat_gateway_ready": "gauge",
    "chat_message_messages_stored_total": "counter",
    "chat_message_send_seconds": "histogram",
    "chat_message_dedup_hits_total": "counter",
}


def series_names() -> set[str]:
    """Every series name a query may use: histograms as _bucket, _count and _sum."""
    names: set[str] = set()
    for name, kind in METRICS.items():
        if kind == "histogram":
            names.update({f"{name}_bucket", f"{name}_count", f"{name}_sum"})
        else:
            names.add(name)
    return names


def base_name(series: str) -> str:
    """chat_x_seconds_bucket -> chat_x_seconds (for histograms); other names unchanged."""
    for suffix in ("_bucket", "_count", "_sum"):
        stem = series.removesuffix(suffix)
        if stem != series and METRICS.get(stem) == "histogram":
            return stem
    return series
