"""Black-box fixtures: chat-auth and chat-message as processes, shared by one test module.

The test kit's `stack` without gateways, and its `api`; a module whose tests
need other limits overrides `message_extra_env`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from message_support import UNLIMITED_RATES, count_500s

from chat_platform.amqp import Broker, CommandClient
from chat_testkit import ServiceProcess, Stack
from chat_testkit.process import log_problems


@pytest.fixture(scope="module")
def message_extra_env() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def stack_gateways() -> int:
    return 0


@pytest.fixture(scope="module")
def stack_extra(message_extra_env: dict[str, str]) -> dict[str, dict[str, str]]:
    return {"message": {**UNLIMITED_RATES, **message_extra_env}}


@pytest.fixture(scope="module")
def auth_service(stack: Stack) -> ServiceProcess:
    return stack.auth


@pytest.fixture(scope="module")
def message_service(stack: Stack) -> ServiceProcess:
    return stack.message


@pytest.fixture
def service_log_clean(message_service: ServiceProcess) -> Iterator[None]:
    """After the test: no traceback or error line in the service's log, no 500 answered."""
    offset = len(message_service.log_text())
    yield
    problems = log_problems(message_service.log_text()[offset:])
    assert not problems, "\n".join(problems)
    metrics = httpx.get(f"{message_service.url}/metrics", timeout=5).text
    assert count_500s(metrics) == 0


@pytest_asyncio.fixture(scope="module")
async def client(
    module_service_env: dict[str, str], message_service: ServiceProcess
) -> AsyncIterator[CommandClient]:
    """The gateways' side of the message service's commands, for tests that send them."""
    env = module_service_env
    broker = Broker(env["AMQP_URL"], f"{env['NAMESPACE']}.events", name="message-tests")
    commands = CommandClient(broker, env["NAMESPACE"], timeout=10)
    await commands.start()
    await broker.start()
    yield commands
    await broker.close()
