"""Which address login throttling counts: the peer, or X-Forwarded-For only when told to trust it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from chat_auth.deps import client_address


def request(headers: dict[str, str]) -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/v1/auth/login",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("192.0.2.10", 51000),
    }
    return Request(scope)


def context(trust: bool) -> Any:
    return SimpleNamespace(settings=SimpleNamespace(trust_forwarded_for=trust))


def test_forwarded_header_is_ignored_unless_trusted() -> None:
    spoofed = request({"X-Forwarded-For": "203.0.113.7"})
    assert client_address(spoofed, context(trust=False)) == "192.0.2.10"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7, 10.0.0.1", "203.0.113.7"),
        (" 203.0.113.7 ,10.0.0.1", "203.0.113.7"),
        ("x" * 500, "x" * 64),
    ],
)
def test_trusted_forwarded_header_gives_the_original_client(header: str, expected: str) -> None:
    assert client_address(request({"X-Forwarded-For": header}), context(trust=True)) == expected


def test_trusted_proxy_without_the_header_falls_back_to_the_peer() -> None:
    assert client_address(request({}), context(trust=True)) == "192.0.2.10"
