"""Black-box fixtures: chat-auth, chat-message and two chat-gateways as processes.

One stack per test module (`stack`); a module that needs other gateway
settings overrides `gateway_env`. Fault tests start a stack of their own per
test with `start_stack`, since they kill what they start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import pytest_asyncio
from gateway_support import FAST_GATEWAY_ENV, Device, LogWatch, Stored

from chat_testkit import ChatApi, ServiceProcess, Stack, User

DeviceFactory = Callable[..., Awaitable[Device]]


@pytest.fixture(scope="module")
def gateway_env() -> dict[str, str]:
    return dict(FAST_GATEWAY_ENV)


@pytest.fixture(scope="module")
def stack(start_module_stack: Callable[..., Stack], gateway_env: dict[str, str]) -> Stack:
    return start_module_stack(extra={"gateway": gateway_env})


@pytest_asyncio.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[ChatApi]:
    async with ChatApi.open(auth_url=stack.auth.url, message_url=stack.message.url) as api:
        yield api


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
