"""Every Prometheus metric of the gateway."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("chat_gateway_connections", "Sockets connected to this instance.")
READY = Gauge("chat_gateway_ready", "1 while this instance is ready for traffic.")
EVENTS = Counter(
    "chat_gateway_events_total", "Socket.IO events by direction and name.", ["direction", "event"]
)
FANOUT_SECONDS = Histogram(
    "chat_gateway_fanout_seconds",
    "From an event's occurrence in the message service to its emission to devices.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
RATE_LIMITED = Counter(
    "chat_gateway_rate_limited_total", "Client events refused by a rate limit.", ["event"]
)
DROPPED_SIGNALS = Counter(
    "chat_gateway_dropped_signals_total", "Ephemeral signals dropped under load.", ["kind"]
)
SYNC_REQUIRED = Counter(
    "chat_gateway_sync_required_total",
    "Times this instance asked all its sockets to sync, by reason.",
    ["reason"],
)
SYNC_REQUESTS = Counter("chat_gateway_sync_requests_total", "Sync requests served.")
SYNC_MESSAGES = Histogram(
    "chat_gateway_sync_messages",
    "Messages returned by one sync.",
    buckets=(0, 1, 5, 10, 50, 100, 500, 1000, 5000),
)
DUPLICATE_EVENTS = Counter(
    "chat_gateway_duplicate_events_total", "Events dropped because they were already fanned out."
)
SHED_SENDS = Counter(
    "chat_gateway_shed_sends_total",
    "Sends refused at once because too many were already waiting for the message service.",
)
ERRORS = Counter(
    "chat_gateway_error_acks_total", "Error acknowledgements by event and code.", ["event", "code"]
)
