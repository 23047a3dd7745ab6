"""Assertions about the public contract that every black-box test makes."""

from __future__ import annotations

from typing import Any

import httpx


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """`response` is the contract's error, `{"error": {code, message, details?}}`; its `error`."""
    assert response.status_code == status, (
        f"expected {status} {code}, got {response.status_code}: {response.text[:500]}"
    )
    assert response.headers.get("content-type", "").startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict)
    assert error.get("code") == code, body
    assert isinstance(error.get("message"), str)
    assert error["message"]
    assert set(error) <= {"code", "message", "details"}, body
    return error
