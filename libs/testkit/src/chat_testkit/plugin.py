"""Pytest plugin: real Redis, RabbitMQ and MongoDB for every test, isolated per test.

Session fixtures find (or start) each server once; function fixtures give each
test its own database name and its own RabbitMQ/Redis namespace, so tests run
in any order. `service_env` is the environment a service under test needs,
and `start_service` runs one as a subprocess.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from chat_testkit.amqp import remove_service_namespace
from chat_testkit.process import ServiceProcess
from chat_testkit.services import Found, ServiceNotFound, find_mongodb, find_rabbitmq, find_redis


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
    return {
        "CHAT_ENV": "test",
        "MONGODB_URL": mongodb_url,
        "MONGODB_DB": db_name,
        "REDIS_URL": redis_url,
        "AMQP_URL": amqp_url,
        "NAMESPACE": namespace,
        "JWT_PRIVATE_KEY_FILE": str(workdir / "keys" / "jwt-private.pem"),
        "LOG_LEVEL": "INFO",
    }


@contextlib.contextmanager
def _service_starter(
    service_env: dict[str, str], log_dir: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(script: str, **env: str) -> ServiceProcess:
        process = ServiceProcess(script, {**service_env, **env}, log_dir)
        started.append(process)
        return process.start()

    try:
        yield start
    finally:
        for process in reversed(started):
            process.stop(timeout=15)
        if started:
            remove_service_namespace(service_env["AMQP_URL"], service_env["NAMESPACE"])


@pytest.fixture
def service_env(
    mongodb_url: str,
    mongodb_db_name: str,
    redis_url: str,
    amqp_url: str,
    namespace: str,
    tmp_path: Path,
) -> dict[str, str]:
    """Environment for services under test: the found servers, isolated names, a fresh key."""
    return _service_env(mongodb_url, mongodb_db_name, redis_url, amqp_url, namespace, tmp_path)


@pytest.fixture
def start_service(
    service_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    """`start_service("chat-auth", EXTRA="1")` runs a service and stops it after the test."""
    with _service_starter(service_env, tmp_path) as start:
        yield start


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
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_url, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(db_name)
    finally:
        client.close()


@pytest.fixture(scope="module")
def start_module_service(
    module_service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ServiceProcess]]:
    """`start_service` whose processes live until the end of the test module."""
    with _service_starter(module_service_env, tmp_path_factory.mktemp("logs")) as start:
        yield start
