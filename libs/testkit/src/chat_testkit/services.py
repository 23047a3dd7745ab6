"""Finding Redis, RabbitMQ and MongoDB for tests, in the order DESIGN §5 gives.

1. an explicit URL in the environment (REDIS_URL, AMQP_URL, MONGODB_URL);
2. a local server on the default port;
3. testcontainers, when a Docker engine answers;
4. for MongoDB only, the embedded SecantusDB server on a free port.
A service found nowhere fails the run with what to start; it never skips.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pymongo
import redis


class ServiceNotFound(RuntimeError):
    pass


@dataclass
class Found:
    url: str
    how: str
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for step in reversed(self.cleanup):
            with contextlib.suppress(Exception):
                step()


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free now and never handed out before by this process.

    A port is often chosen before whatever will listen on it starts (a test
    that needs its gateways' addresses for CORS first); without remembering,
    a second call in between could return the same still-unbound port.
    """
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port that was not handed out already")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


def _redis_ok(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except Exception:
        return False


def _amqp_ok(url: str) -> bool:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return port_open(parsed.hostname or "127.0.0.1", parsed.port or 5672, timeout=2)


def _mongo_ok(url: str) -> bool:
    try:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            url, serverSelectionTimeoutMS=2000
        )
        client.admin.command("ping")
        client.close()
    except Exception:
        return False
    return True


def _redis_container() -> Found:
    from testcontainers.redis import RedisContainer

    container = RedisContainer().start()
    url = f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
    return Found(url, "testcontainers", [container.stop])


def _rabbitmq_container() -> Found:
    from testcontainers.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer().start()
    host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
    return Found(f"amqp://guest:guest@{host}:{port}/", "testcontainers", [container.stop])


def _mongodb_container() -> Found:
    from testcontainers.mongodb import MongoDbContainer

    container = MongoDbContainer("mongo:7").start()
    return Found(container.get_connection_url(), "testcontainers", [container.stop])


def _nowhere(message: str) -> Callable[[], Found]:
    def fail() -> Found:
        raise ServiceNotFound(message)

    return fail


@dataclass(frozen=True)
class _Server:
    """One kind of server and where to look for it, in the order of the module docstring.

    `last_resort` runs when neither the environment, this machine nor Docker has
    one: it starts one (MongoDB) or says what to start.
    """

    name: str
    variable: str
    local_url: str
    local_port: int
    answers: Callable[[str], bool]
    container: Callable[[], Found]
    last_resort: Callable[[], Found]

    def find(self) -> Found:
        explicit = os.environ.get(self.variable)
        if explicit:
            if self.answers(explicit):
                return Found(explicit, self.variable)
            raise ServiceNotFound(
                f"{self.variable}={explicit} is set but {self.name} does not answer there."
            )
        # The port first: a client's own timeout is far longer than a refused connection.
        if port_open("127.0.0.1", self.local_port) and self.answers(self.local_url):
            return Found(self.local_url, "local server")
        if _docker_available():
            return self.container()
        return self.last_resort()


def find_redis() -> Found:
    return _REDIS.find()


def find_rabbitmq() -> Found:
    return _RABBITMQ.find()


def find_mongodb() -> Found:
    return _MONGODB.find()


def drop_database(mongodb_url: str, name: str) -> None:
    """Drop what a test run or a bench run stored under its own database name."""
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        mongodb_url, serverSelectionTimeoutMS=5000
    )
    try:
        client.drop_database(name)
    finally:
        client.close()


@dataclass
class EmbeddedMongo:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def stop(self, timeout: float = 20.0) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def secantusd_command() -> list[str]:
    exe = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    if not Path(exe).exists():
        raise ServiceNotFound(
            "MongoDB not found and the embedded server is not installed: "
            "set MONGODB_URL or run `make install` (it installs SecantusDB)."
        )
    return [exe]


def spawn_embedded_mongodb(port: int, storage: str, log_path: Path) -> EmbeddedMongo:
    """Start SecantusDB, the embedded MongoDB-compatible server, and wait until it answers."""
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        [
            *secantusd_command(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            storage,
            "--log-level",
            "WARNING",
            # Its log synced at every commit: an acknowledged write survives the server being
            # killed, as MongoDB's journaled writes (j: true) do.
            "--sync-on-commit",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    embedded = EmbeddedMongo(process, port, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceNotFound(f"the embedded MongoDB server exited; see {log_path}")
        if port_open("127.0.0.1", port) and _mongo_ok(embedded.url):
            return embedded
        time.sleep(0.1)
    process.kill()
    raise ServiceNotFound(f"the embedded MongoDB server did not start in 30 s; see {log_path}")


def start_embedded_mongodb() -> Found:
    workdir = Path(tempfile.mkdtemp(prefix="chat-secantus-"))
    embedded = spawn_embedded_mongodb(free_port(), str(workdir / "data"), workdir / "server.log")

    return Found(
        embedded.url,
        "embedded SecantusDB",
        [lambda: shutil.rmtree(workdir, ignore_errors=True), embedded.stop],
    )


@contextlib.contextmanager
def found(finder: Callable[[], Found]) -> Iterator[Found]:
    result = finder()
    try:
        yield result
    finally:
        result.close()


_REDIS = _Server(
    "Redis",
    "REDIS_URL",
    "redis://127.0.0.1:6379/0",
    6379,
    _redis_ok,
    _redis_container,
    _nowhere(
        "Redis not found: set REDIS_URL, start a local server "
        "(redis-server --port 6379), or run a Docker engine for testcontainers."
    ),
)
_RABBITMQ = _Server(
    "RabbitMQ",
    "AMQP_URL",
    "amqp://guest:guest@127.0.0.1:5672/",
    5672,
    _amqp_ok,
    _rabbitmq_container,
    _nowhere(
        "RabbitMQ not found: set AMQP_URL, start a local server (rabbitmq-server -detached), "
        "or run a Docker engine for testcontainers."
    ),
)
_MONGODB = _Server(
    "MongoDB",
    "MONGODB_URL",
    "mongodb://127.0.0.1:27017/?directConnection=true",
    27017,
    _mongo_ok,
    _mongodb_container,
    start_embedded_mongodb,
)
