"""Pytest plugin: real Redis, RabbitMQ and MongoDB for every test, isolated per test.

Session fixtures find (or start) each server once; function fixtures give each
test its own database name and its own RabbitMQ/Redis namespace, so tests run
in any order. `service_env` is the environment a service under test needs,
`start_service` runs one as a subprocess and `start_stack` the whole system
(`chat_testkit.stack`); the `module_` variants live as long as a test module.
`stack`, `api` and `stored` are one stack per test module, its REST client and
its database; a suite shapes that stack by overriding `stack_gateways` and
`stack_extra`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from chat_testkit.amqp import remove_service_namespace
from chat_testkit.api import ChatApi
from chat_testkit.private import PrivateRabbitMQ, PrivateRedis, PrivateServerError
from chat_testkit.process import ServiceProcess
from chat_testkit.services import (
    Found,
    ServiceNotFound,
    drop_database,
    find_mongodb,
    find_rabbitmq,
    find_redis,
)
from chat_testkit.stack import Stack, stack_env
from chat_testkit.stored import Stored


def _find(finder: Callable[[], Found]) -> Found:
    try:
        return finder()
    except ServiceNotFound as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    found = _find(find_redis)
    yield found.url
    found.close()


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    found = _find(find_rabbitmq)
    yield found.url
    found.close()


@pytest.fixture(scope="session")
def mongodb_url() -> Iterator[str]:
    found = _find(find_mongodb)
    yield found.url
    found.close()


@pytest.fixture
def namespace() -> str:
    """A RabbitMQ exchange/queue and Redis key prefix of this test's own."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def mongodb_db_name() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def mongo_client(mongodb_url: str) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    yield client
    await client.close()


@pytest_asyncio.fixture
async def mongo_db(
    mongo_client: AsyncMongoClient[dict[str, Any]], mongodb_db_name: str
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    yield mongo_client[mongodb_db_name]
    await mongo_client.drop_database(mongodb_db_name)


@pytest_asyncio.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def _service_env(
    mongodb_url: str, db_name: str, redis_url: str, amqp_url: str, namespace: str, workdir: Path
) -> dict[str, str]:
    env = stack_env(
        redis_url=redis_url,
        amqp_url=amqp_url,
        mongodb_url=mongodb_url,
        key_file=workdir / "keys" / "jwt-private.pem",
        chat_env="test",
        db=db_name,
        namespace=namespace,
    )
    return {**env, "LOG_LEVEL": "INFO"}


class Launcher:
    """Starts services and whole stacks on one test environment, and cleans up after them.

    `close()` stops everything it started, then deletes what the services
    declared on the shared broker under the environment's namespace.
    """

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.stacks: list[Stack] = []
        self.processes: list[ServiceProcess] = []

    def service(self, script: str, **env: str) -> ServiceProcess:
        process = ServiceProcess(script, {**self.env, **env}, self.log_dir)
        self.processes.append(process)
        return process.start()

    def stack(
        self, *, gateways: int = 2, extra: Mapping[str, Mapping[str, str]] | None = None
    ) -> Stack:
        stack = Stack.launch(self.env, self.log_dir, gateways=gateways, extra=extra)
        self.stacks.append(stack)
        return stack

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop(timeout=15)
        for stack in self.stacks:
            stack.stop()
        # Also after a start that failed: what it declared before failing stays otherwise.
        remove_service_namespace(self.env["AMQP_URL"], self.env["NAMESPACE"])


@contextlib.contextmanager
def _launcher(env: dict[str, str], log_dir: Path) -> Iterator[Launcher]:
    launcher = Launcher(env, log_dir)
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture
def service_env(
    mongodb_url: str,
    mongodb_db_name: str,
    redis_url: str,
    amqp_url: str,
    namespace: str,
    tmp_path: Path,
) -> Iterator[dict[str, str]]:
    """Environment for services under test: the found servers, isolated names, a fresh key.

    The test's database is dropped afterwards (after its services stopped).
    """
    yield _service_env(mongodb_url, mongodb_db_name, redis_url, amqp_url, namespace, tmp_path)
    drop_database(mongodb_url, mongodb_db_name)


@pytest.fixture
def launcher(service_env: dict[str, str], tmp_path: Path) -> Iterator[Launcher]:
    with _launcher(service_env, tmp_path) as started:
        yield started


@pytest.fixture
def start_service(launcher: Launcher) -> Callable[..., ServiceProcess]:
    """`start_service("chat-auth", EXTRA="1")` runs a service and stops it after the test."""
    return launcher.service


@pytest.fixture
def start_stack(launcher: Launcher) -> Callable[..., Stack]:
    """`start_stack(gateways=2, extra={"gateway": {...}})`: a `Stack`, stopped after the test."""
    return launcher.stack


@pytest.fixture(scope="module")
def module_service_env(
    mongodb_url: str, redis_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """`service_env` shared by one test module: its own namespace, database and key.

    For black-box modules whose tests can share one running service (a start
    costs about a second); the database is dropped when the module is done.
    """
    db_name = f"test_{uuid.uuid4().hex[:12]}"
    workdir = tmp_path_factory.mktemp("service")
    namespace = f"t{uuid.uuid4().hex[:12]}"
    yield _service_env(mongodb_url, db_name, redis_url, amqp_url, namespace, workdir)
    drop_database(mongodb_url, db_name)


@pytest.fixture(scope="module")
def module_launcher(
    module_service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Launcher]:
    with _launcher(module_service_env, tmp_path_factory.mktemp("logs")) as started:
        yield started


@pytest.fixture(scope="module")
def start_module_service(module_launcher: Launcher) -> Callable[..., ServiceProcess]:
    """`start_service` whose processes live until the end of the test module."""
    return module_launcher.service


@pytest.fixture(scope="module")
def start_module_stack(module_launcher: Launcher) -> Callable[..., Stack]:
    """`start_stack` whose stacks live until the end of the test module."""
    return module_launcher.stack


@pytest.fixture(scope="module")
def stack_gateways() -> int:
    """How many gateways the module's `stack` runs; a suite overrides it (0: message alone)."""
    return 2


@pytest.fixture(scope="module")
def stack_extra() -> dict[str, dict[str, str]]:
    """Settings of single services of the module's `stack`, as `{"gateway": {...}}`."""
    return {}


@pytest.fixture(scope="module")
def stack(
    start_module_stack: Callable[..., Stack],
    stack_gateways: int,
    stack_extra: dict[str, dict[str, str]],
) -> Stack:
    """Auth, message and `stack_gateways` gateways, shared by the tests of one module."""
    return start_module_stack(gateways=stack_gateways, extra=stack_extra)


@pytest_asyncio.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[ChatApi]:
    """The REST API of the module's `stack`."""
    async with ChatApi.open(auth_url=stack.auth.url, message_url=stack.message.url) as api:
        yield api


@pytest.fixture(scope="module")
def stored(module_service_env: dict[str, str]) -> Iterator[Stored]:
    """The database of the module's services, read directly."""
    reader = Stored(module_service_env["MONGODB_URL"], module_service_env["MONGODB_DB"])
    yield reader
    reader.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own (started), which it may kill and restart at will."""
    try:
        server = PrivateRedis(workdir=tmp_path / "private-redis")
        server.start()
    except PrivateServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.close()


@pytest.fixture
def private_rabbitmq(tmp_path: Path) -> Iterator[PrivateRabbitMQ]:
    """A RabbitMQ node of the test's own (started), which it may stop, kill and restart."""
    try:
        server = PrivateRabbitMQ()
        server.start()
    except PrivateServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.close()
