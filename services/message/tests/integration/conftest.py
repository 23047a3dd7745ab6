"""Black-box fixtures: chat-auth and chat-message as processes, shared by one test module.

A module whose tests need other limits overrides `message_extra_env`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import pytest_asyncio
from message_support import MessageApi, StoredCounts, count_500s, log_problems

from chat_testkit import ServiceProcess


@pytest.fixture(scope="module")
def message_extra_env() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def auth_service(start_module_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    return start_module_service("chat-auth")


@pytest.fixture(scope="module")
def message_service(
    start_module_service: Callable[..., ServiceProcess],
    auth_service: ServiceProcess,
    message_extra_env: dict[str, str],
) -> ServiceProcess:
    return start_module_service("chat-message", AUTH_URL=auth_service.url, **message_extra_env)


@pytest_asyncio.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        yield client


@pytest.fixture(scope="module")
def api(
    http: httpx.AsyncClient, message_service: ServiceProcess, auth_service: ServiceProcess
) -> MessageApi:
    return MessageApi(http, message_service.url, auth_service.url)


@pytest.fixture(scope="module")
def stored(module_service_env: dict[str, str]) -> Iterator[StoredCounts]:
    counts = StoredCounts(module_service_env["MONGODB_URL"], module_service_env["MONGODB_DB"])
    yield counts
    counts.close()


@pytest.fixture
def service_log_clean(message_service: ServiceProcess) -> Iterator[None]:
    """After the test: no traceback or error line in the service's log, no 500 answered."""
    offset = len(message_service.log_text())
    yield
    problems = log_problems(message_service.log_text()[offset:])
    assert not problems, "\n".join(problems)
    metrics = httpx.get(f"{message_service.url}/metrics", timeout=5).text
    assert count_500s(metrics) == 0
