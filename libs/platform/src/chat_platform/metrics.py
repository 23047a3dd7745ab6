"""Prometheus helpers: the HTTP latency middleware and the /metrics response."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Items per batch (group commits, bulk writes).
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

_http_histograms: dict[str, Histogram] = {}


def http_histogram(service: str) -> Histogram:
    # One histogram per service name, created once: prometheus-client refuses duplicates.
    if service not in _http_histograms:
        _http_histograms[service] = Histogram(
            f"chat_{service}_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
        )
    return _http_histograms[service]


class HttpMetrics:
    """Times each request, labelled by route template (never the raw path: unbounded)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.histogram = http_histogram(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.histogram.labels(scope["method"], _route_template(scope), str(status)).observe(
                time.perf_counter() - start
            )


def _route_template(scope: Scope) -> str:
    # The router records the route it chose in the scope it shares with us. Matching the
    # app's routes again instead stops at FastAPI's included-router wrappers, which have no
    # path, so every included route would be one label.
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    # Refused before routing (a body over the limit): find the route it was meant for.
    app = scope.get("app")
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", ()):
        match, _ = route.matches(scope)
        path = getattr(route, "path", None)
        if match == Match.FULL and isinstance(path, str):
            return path
    return "unmatched"


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
