"""Per-address budgets of registration and login on a real chat-auth, behind a trusted proxy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest_asyncio

from chat_testkit import ServiceProcess
from chat_testkit.contract import assert_error

PASSWORD = "correct horse battery"
BURST = 3


@pytest_asyncio.fixture
async def behind_proxy(
    start_service: Callable[..., ServiceProcess],
) -> AsyncIterator[httpx.AsyncClient]:
    """An auth whose only proxy is 127.0.0.1 (the test), with small per-address budgets."""
    service = start_service(
        "chat-auth",
        TRUSTED_PROXIES="127.0.0.1/32",
        RATE_REGISTER=f"0.001/{BURST}",
        RATE_LOGIN=f"0.001/{BURST}",
    )
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
        yield client


async def register(api: httpx.AsyncClient, forwarded_for: str) -> httpx.Response:
    body = {"username": f"a{uuid.uuid4().hex[:12]}", "password": PASSWORD}
    return await api.post(
        "/v1/auth/register", json=body, headers={"X-Forwarded-For": forwarded_for}
    )


async def test_registrations_from_one_address_are_limited(behind_proxy: httpx.AsyncClient) -> None:
    for _ in range(BURST):
        assert (await register(behind_proxy, "203.0.113.1")).status_code == 201
    limited = await register(behind_proxy, "203.0.113.1")
    error = assert_error(limited, 429, "rate_limited")
    assert limited.headers["Retry-After"] == str(error["details"]["retry_after"])
    # A made-up hop on the left does not make it another client.
    assert_error(await register(behind_proxy, "198.51.100.9, 203.0.113.1"), 429, "rate_limited")
    assert (await register(behind_proxy, "203.0.113.2")).status_code == 201


async def test_login_attempts_from_one_address_are_limited(behind_proxy: httpx.AsyncClient) -> None:
    answers = []
    for i in range(BURST + 1):
        body = {"username": f"nobody{i}", "password": PASSWORD}
        headers = {"X-Forwarded-For": "203.0.113.3"}
        answers.append(await behind_proxy.post("/v1/auth/login", json=body, headers=headers))
    assert [a.status_code for a in answers] == [401] * BURST + [429]
    other = {"username": "nobody", "password": PASSWORD}
    elsewhere = await behind_proxy.post(
        "/v1/auth/login", json=other, headers={"X-Forwarded-For": "203.0.113.4"}
    )
    assert_error(elsewhere, 401, "invalid_credentials")


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service("chat-auth", RATE_REGISTER=f"0.001/{BURST}")
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as api:
        for i in range(BURST):
            assert (await register(api, f"203.0.113.{10 + i}")).status_code == 201
        # Each claimed another address; all came from 127.0.0.1, whose budget is spent.
        assert_error(await register(api, "203.0.113.99"), 429, "rate_limited")
