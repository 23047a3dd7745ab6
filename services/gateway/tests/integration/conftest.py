"""Black-box fixtures: chat-auth, chat-message and two chat-gateways as processes.

One stack per test module (the test kit's `stack` and `api`), its gateways on
FAST_GATEWAY_ENV; a module that needs other settings overrides `stack_extra`.
Fault tests start a stack of their own per test with `start_stack`, since
they kill what they start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import pytest_asyncio
from gateway_support import FAST_GATEWAY_ENV, Device, LogWatch

from chat_testkit import ServiceProcess, Stack, User

DeviceFactory = Callable[..., Awaitable[Device]]


@pytest.fixture(scope="module")
def stack_extra() -> dict[str, dict[str, str]]:
    return {"gateway": dict(FAST_GATEWAY_ENV)}


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
