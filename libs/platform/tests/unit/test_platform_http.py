"""What every service app has: the body size limit, the error shape, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict
from starlette.types import Receive, Scope, Send

from chat_contracts import ErrorCode
from chat_contracts.errors import ApiError, not_found, rate_limited
from chat_platform.app import create_service_app
from chat_platform.health import Health
from chat_platform.http import BodySizeLimit
from chat_testkit.contract import assert_error

LIMIT = 1024
UPLOAD_LIMIT = 8 * 1024


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    count: int


@contextlib.asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def build_app(health: Health | None = None) -> FastAPI:
    app = create_service_app(
        "unittest",
        health=health or Health(),
        lifespan=_no_lifespan,
        max_body_bytes=LIMIT,
        body_limit_for=lambda path: UPLOAD_LIMIT if path.startswith("/upload") else LIMIT,
    )

    @app.post("/things")
    async def create_thing(thing: Thing) -> dict[str, Any]:
        return thing.model_dump()

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 404:
            raise not_found("Item")
        return {"id": item_id}

    @app.get("/conflict")
    async def conflict() -> None:
        raise ApiError(ErrorCode.CONFLICT, "Already there.", {"id": "x"})

    @app.get("/slow-down")
    async def slow_down() -> None:
        raise rate_limited(2.3)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    # Services declare their routes on prefixed routers, included into the app.
    widgets = APIRouter(prefix="/v1/widgets")

    @widgets.get("/{widget_id}")
    async def widget(widget_id: str) -> dict[str, str]:
        return {"id": widget_id}

    app.include_router(widgets)
    return app


def client_for(app: Any) -> httpx.AsyncClient:
    # raise_app_exceptions=False: a 500 must reach the client as a response, as over a socket.
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def _chunks(
    total: int, size: int = 256, produced: list[int] | None = None
) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        if produced is not None:
            produced.append(size)
        yield b"x" * size
        sent += size


# --- BodySizeLimit ---------------------------------------------------------------------------


async def test_declared_body_over_the_limit_is_refused_with_413() -> None:
    async with client_for(build_app()) as client:
        response = await client.post(
            "/things",
            content=b"{" + b" " * LIMIT + b"}",
            headers={"content-type": "application/json"},
        )
    error = assert_error(response, 413, "payload_too_large")
    assert error["details"] == {"max_bytes": LIMIT}


async def test_chunked_body_over_the_limit_is_refused_with_413() -> None:
    produced: list[int] = []
    async with client_for(build_app()) as client:
        response = await client.post(
            "/things",
            content=_chunks(100 * LIMIT, produced=produced),
            headers={"content-type": "application/json"},
        )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")
    # Cut off as soon as it passed the limit, not after reading it whole.
    assert sum(produced) <= LIMIT + 2 * 256


async def test_chunked_upload_read_by_the_handler_is_cut_off_too() -> None:
    produced: list[int] = []
    async with client_for(build_app()) as client:
        response = await client.post(
            "/upload", content=_chunks(10 * UPLOAD_LIMIT, produced=produced)
        )
    assert_error(response, 413, "payload_too_large")
    assert sum(produced) <= UPLOAD_LIMIT + 2 * 256


async def test_body_at_the_limit_passes() -> None:
    thing = {"name": "n" * 100, "count": 1}
    body = json.dumps(thing).encode()
    body += b" " * (LIMIT - len(body))
    async with client_for(build_app()) as client:
        response = await client.post(
            "/things", content=body, headers={"content-type": "application/json"}
        )
        streamed = await client.post("/upload", content=_chunks(LIMIT))
    assert response.status_code == 200, response.text
    assert response.json() == thing
    assert streamed.json() == {"size": LIMIT}


async def test_a_route_can_have_a_larger_limit() -> None:
    async with client_for(build_app()) as client:
        declared = await client.post("/upload", content=b"x" * UPLOAD_LIMIT)
        chunked = await client.post("/upload", content=_chunks(UPLOAD_LIMIT))
        too_big = await client.post("/upload", content=b"x" * (UPLOAD_LIMIT + 1))
    assert declared.json() == {"size": UPLOAD_LIMIT}
    assert chunked.json() == {"size": UPLOAD_LIMIT}
    assert_error(too_big, 413, "payload_too_large")


async def test_limit_applies_to_a_plain_asgi_app() -> None:
    # Without FastAPI's handlers the middleware itself must answer in the contract's shape.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limited = BodySizeLimit(app, limit_for=lambda _: LIMIT)
    async with client_for(limited) as client:
        ok = await client.post("/", content=_chunks(LIMIT))
        chunked = await client.post("/", content=_chunks(4 * LIMIT))
        declared = await client.post("/", content=b"x" * (LIMIT + 1))
    assert ok.text == "ok"
    for response in (chunked, declared):
        error = assert_error(response, 413, "payload_too_large")
        assert error["details"] == {"max_bytes": LIMIT}


async def test_non_numeric_content_length_is_refused() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("must not be reached")

    limited = BodySizeLimit(app, limit_for=lambda _: LIMIT)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/", "headers": [(b"content-length", b"lots")]}
    await limited(scope, receive, send)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "payload_too_large"


# --- error shape -----------------------------------------------------------------------------


async def test_api_error_has_the_contract_shape() -> None:
    async with client_for(build_app()) as client:
        response = await client.get("/conflict")
        missing = await client.get("/items/404")
    assert assert_error(response, 409, "conflict") == {
        "code": "conflict",
        "message": "Already there.",
        "details": {"id": "x"},
    }
    assert "details" not in assert_error(missing, 404, "not_found")


async def test_rate_limited_carries_retry_after_in_body_and_header() -> None:
    async with client_for(build_app()) as client:
        response = await client.get("/slow-down")
    error = assert_error(response, 429, "rate_limited")
    assert error["details"] == {"retry_after": 3}
    assert response.headers["retry-after"] == "3"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "a"}, ["count"]),
        ({"name": "a", "count": 1, "admin": True}, ["admin"]),
        ({"name": 5, "count": "5"}, ["name", "count"]),
        ({"name": {"$gt": ""}, "count": 1}, ["name"]),
        ([1, 2, 3], [""]),
        ("just a string", [""]),
        (None, [""]),
    ],
)
async def test_validation_error_names_fields_without_echoing_input(
    body: Any, fields: list[str]
) -> None:
    async with client_for(build_app()) as client:
        response = await client.post("/things", json=body)
    error = assert_error(response, 422, "validation_error")
    assert [f["field"] for f in error["details"]["fields"]] == fields
    assert "$gt" not in response.text


async def test_validation_error_does_not_echo_a_secret_value() -> None:
    async with client_for(build_app()) as client:
        response = await client.post("/things", json={"name": "n", "count": "hunter2-secret"})
    assert_error(response, 422, "validation_error")
    assert "hunter2" not in response.text


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"name": "a",', b"\xff\xfe\xfd", b'{"name": "\xff", "count": 1}', b""],
    ids=["text", "truncated", "binary", "bad-utf8-inside", "empty"],
)
async def test_undecodable_bodies_are_validation_errors(raw: bytes) -> None:
    async with client_for(build_app()) as client:
        response = await client.post(
            "/things", content=raw, headers={"content-type": "application/json"}
        )
    assert_error(response, 422, "validation_error")


async def test_validation_details_are_bounded() -> None:
    fields = {f"x{i}": 0 for i in range(40)}
    async with client_for(build_app()) as client:
        response = await client.post("/things", json={"name": "a", "count": 1, **fields})
    assert len(assert_error(response, 422, "validation_error")["details"]["fields"]) == 20


async def test_path_parameter_of_the_wrong_type_is_a_validation_error() -> None:
    async with client_for(build_app()) as client:
        response = await client.get("/items/abc")
    error = assert_error(response, 422, "validation_error")
    assert error["details"]["fields"][0]["field"] == "path.item_id"


async def test_framework_errors_take_the_contract_shape() -> None:
    async with client_for(build_app()) as client:
        unknown = await client.get("/nowhere")
        wrong_method = await client.delete("/things")
    assert_error(unknown, 404, "not_found")
    assert_error(wrong_method, 405, "method_not_allowed")


async def test_unexpected_exception_is_a_500_that_leaks_nothing() -> None:
    async with client_for(build_app()) as client:
        response = await client.get("/boom")
    assert assert_error(response, 500, "internal") == {
        "code": "internal",
        "message": "Internal error.",
    }
    assert "hunter2" not in response.text


# --- health and metrics ----------------------------------------------------------------------


async def _ok() -> None:
    return None


async def _down() -> None:
    raise ConnectionError("connection refused")


async def _hangs() -> None:
    await asyncio.sleep(5)


async def test_ready_when_every_check_passes() -> None:
    health = Health()
    health.add("mongodb", _ok)
    health.add("redis", _ok)
    async with client_for(build_app(health)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": ["mongodb", "redis"]}


async def test_not_ready_names_the_failing_dependencies() -> None:
    health = Health(timeout=0.1)
    health.add("mongodb", _ok)
    health.add("rabbitmq", _down)
    health.add("redis", _hangs)
    async with client_for(build_app(health)) as client:
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")
    error = assert_error(ready, 503, "unavailable")
    failing = error["details"]["failing"]
    assert set(failing) == {"rabbitmq", "redis"}
    assert "connection refused" in failing["rabbitmq"]
    assert failing["redis"].startswith("TimeoutError")
    assert "rabbitmq" in error["message"]
    assert "redis" in error["message"]
    # Liveness is about the process only: a dependency being down must not get it restarted.
    assert alive.status_code == 200
    assert alive.json() == {"status": "ok"}


async def test_draining_is_not_ready() -> None:
    health = Health()
    health.add("mongodb", _ok)
    health.draining = True
    async with client_for(build_app(health)) as client:
        response = await client.get("/readyz")
    assert assert_error(response, 503, "unavailable")["details"] == {
        "failing": {"draining": "shutting down"}
    }


async def test_metrics_label_requests_by_route_template() -> None:
    async with client_for(build_app()) as client:
        for item_id in (123, 456, 789):
            await client.get(f"/items/{item_id}")
            await client.get(f"/v1/widgets/w{item_id}")
        await client.get("/nowhere/at/all")
        await client.get("/healthz")
        await client.post("/things", content=b"x" * (LIMIT + 1))
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    series = "chat_unittest_http_request_duration_seconds_count"
    for route, method, status in [
        ("/items/{item_id}", "GET", 200),
        ("/v1/widgets/{widget_id}", "GET", 200),
        ("/healthz", "GET", 200),
        ("/things", "POST", 413),
        ("unmatched", "GET", 404),
    ]:
        assert f'{series}{{method="{method}",route="{route}",status="{status}"}}' in text, route
    # Raw paths would make the label set unbounded.
    for raw in ("/items/123", "/v1/widgets/w123", "/nowhere/at/all"):
        assert raw not in text
