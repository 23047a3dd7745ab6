"""One chat-auth process per test module, and clients to talk to it and look behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from chat_testkit import ServiceProcess


@pytest.fixture(scope="module")
def auth_service(start_module_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    # Every test speaks from 127.0.0.1: a per-address limit of 50 failures a module would
    # reach makes tests depend on each other. Per-username throttling stays at its default.
    return start_module_service("chat-auth", LOGIN_FAILURES_PER_ADDRESS="100000")


@pytest_asyncio.fixture(scope="module")
async def api(auth_service: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=auth_service.url, timeout=10) as client:
        yield client


@pytest_asyncio.fixture(scope="module")
async def auth_db(auth_service: ServiceProcess) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """The service's own database, to check what it stored (and that it stored nothing)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        auth_service.env["MONGODB_URL"], tz_aware=True
    )
    yield client[auth_service.env["MONGODB_DB"]]
    await client.close()
