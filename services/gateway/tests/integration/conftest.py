"""Black-box fixtures: chat-auth, chat-message and two chat-gateways as processes.

One stack per test module (`stack`); a module that needs other gateway
settings overrides `gateway_env`. Fault tests build their own stack per test
with `build_stack(start_service, ...)` since they kill what they start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from gateway_stack import FAST_GATEWAY_ENV, Stack, build_stack, remove_namespace
from gateway_support import Api, Device, LogWatch, Stored, User
from pymongo import MongoClient

from chat_testkit import ServiceProcess

DeviceFactory = Callable[..., Awaitable[Device]]


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    return dict(FAST_GATEWAY_ENV)


@pytest.fixture(scope="module")
def stack(
    start_module_service: Callable[..., ServiceProcess],
    module_service_env: dict[str, str],
    gateway_env: dict[str, str],
) -> Iterator[Stack]:
    started = build_stack(start_module_service, module_service_env, gateway_env)
    yield started
    for process in reversed(started.processes):
        process.stop(timeout=15)
    remove_namespace(module_service_env)


@pytest.fixture
def leftovers_removed(service_env: dict[str, str]) -> Iterator[None]:
    """For tests with a stack of their own; request it before `start_service` so that it
    runs after the services stopped: drops their database and their broker namespace."""
    yield
    remove_namespace(service_env)
    client: MongoClient[dict[str, Any]] = MongoClient(service_env["MONGODB_URL"])
    try:
        client.drop_database(service_env["MONGODB_DB"])
    finally:
        client.close()


@pytest_asyncio.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        yield client


@pytest.fixture(scope="module")
def api(http: httpx.AsyncClient, stack: Stack) -> Api:
    return Api(http, stack.auth.url, stack.message.url)


@pytest.fixture(scope="module")
def stored(module_service_env: dict[str, str]) -> Iterator[Stored]:
    db = Stored(module_service_env["MONGODB_URL"], module_service_env["MONGODB_DB"])
    yield db
    db.close()


@pytest_asyncio.fixture
async def devices() -> AsyncIterator[DeviceFactory]:
    """`await devices(user, gateway, label)`: a connected Device, closed after the test."""
    made: list[Device] = []

    async def connect(
        user: User, gateway: ServiceProcess | str, label: str | None = None
    ) -> Device:
        device = Device(user, label)
        made.append(device)
        url = gateway if isinstance(gateway, str) else gateway.url
        return await device.connect(url)

    yield connect
    for device in made:
        await device.close()


@pytest.fixture(autouse=True)
def no_crash_in_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the module's stack: no traceback or error line in any service log."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack: Stack = request.getfixturevalue("stack")
    watch = LogWatch(stack.processes).mark()
    yield
    problems = watch.problems()
    assert not problems, "\n".join(problems)
