"""Black-box fixtures: chat-auth and chat-message as processes, shared by one test module.

A module whose tests need other limits overrides `message_extra_env`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import pytest_asyncio
from message_support import StoredCounts, count_500s

from chat_testkit import ChatApi, ServiceProcess, Stack
from chat_testkit.process import log_problems


@pytest.fixture(scope="module")
def message_extra_env() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def stack(start_module_stack: Callable[..., Stack], message_extra_env: dict[str, str]) -> Stack:
    return start_module_stack(gateways=0, extra={"message": message_extra_env})


@pytest.fixture(scope="module")
def auth_service(stack: Stack) -> ServiceProcess:
    return stack.auth


@pytest.fixture(scope="module")
def message_service(stack: Stack) -> ServiceProcess:
    return stack.message


@pytest_asyncio.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[ChatApi]:
    async with ChatApi.open(auth_url=stack.auth.url, message_url=stack.message.url) as api:
        yield api


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
