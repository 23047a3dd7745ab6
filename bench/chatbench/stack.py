"""The system under test: the bench's own stack, started as `make dev` starts it, or a running one.

The own stack is `make dev`'s, built the same way (`chat_testkit.stack`): an
embedded MongoDB-compatible server unless MONGODB_URL is set, then auth, message
and gateways, here on free ports with a namespace and database of its own, so
that it never meets a dev stack or a test run on the same Redis and RabbitMQ.
Its gateways get per-user rate limits far above what the bench sends, so that
the bench measures delivery and not throttling.
Everything it starts it stops, and it deletes its queues, keys and database.

For the chaos scenario the own stack runs on a Redis and a RabbitMQ of its own
(`chat_testkit.private`), so that restarting them disturbs nobody else; the
stack can take each of its components down and bring it back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from chat_testkit.amqp import remove_service_namespace
from chat_testkit.private import PrivateRabbitMQ, PrivateRedis, PrivateServer, PrivateServerError
from chat_testkit.process import ServiceProcess
from chat_testkit.services import (
    EmbeddedMongo,
    ServiceNotFound,
    drop_database,
    find_rabbitmq,
    find_redis,
    free_port,
    port_open,
    spawn_embedded_mongodb,
)
from chat_testkit.stack import Stack as Services
from chat_testkit.stack import stack_env

from .procstat import pid_listening_on

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / ".dev" / "bench"

# Far above anything a scenario sends per user: the bench measures delivery, not throttling.
UNTHROTTLED = {
    "RATE_SEND": "1000000/1000000",
    "RATE_TYPING": "1000000/1000000",
    "RATE_SYNC": "1000000/1000000",
    "RATE_OTHER": "1000000/1000000",
}


class StackError(RuntimeError):
    pass


def _port_of(url: str, default: int) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default


def _local(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


@dataclass
class Stack:
    """URLs of the services, and the processes whose CPU and memory the report shows."""

    auth_url: str
    message_url: str
    gateway_urls: list[str]
    own: bool
    namespace: str
    db: str
    redis_url: str = ""
    amqp_url: str = ""
    mongodb_url: str = ""
    gateway_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = BENCH_DIR / "logs"
    # The own stack's processes; on a running stack, the gateways storm adds to it.
    services: Services | None = None
    joined: list[ServiceProcess] = field(default_factory=list)
    # The gateways the bench may kill and restart: the own stack's, or those it joined.
    gateways: list[ServiceProcess] = field(default_factory=list)
    mongo: EmbeddedMongo | None = None
    mongo_dir: Path | None = None
    mongo_storage: Path | None = None
    drop_db: bool = False
    # Redis and RabbitMQ of the run's own ("redis", "rabbitmq"), when it has them.
    private: dict[str, PrivateServer] = field(default_factory=dict)

    # --- what the report measures ---------------------------------------------------------

    def pids(self, gateway_urls: list[str] | None = None) -> dict[str, int]:
        """Every server process worth watching, by role, found by the port it listens on."""
        found: dict[str, int] = {}

        def by_port(name: str, url: str, default: int) -> None:
            host, port = _port_of(url, default)
            if _local(host):
                pid = pid_listening_on(port)
                if pid is not None:
                    found[name] = pid

        by_port("auth", self.auth_url, 80)
        by_port("message", self.message_url, 80)
        for i, url in enumerate(self.gateway_urls if gateway_urls is None else gateway_urls):
            by_port(f"gateway{i + 1}", url, 80)
        if self.mongo is not None:
            found["mongodb"] = self.mongo.process.pid
        elif self.mongodb_url:
            by_port("mongodb", self.mongodb_url.split(",")[0], 27017)
        if self.redis_url:
            by_port("redis", self.redis_url, 6379)
        if self.amqp_url:
            by_port("rabbitmq", self.amqp_url, 5672)
        return found

    # --- gateways the bench owns (storm) ---------------------------------------------------------

    def owned_gateway_urls(self) -> list[str]:
        return [g.url for g in self.gateways]

    def kill_gateway(self, index: int) -> None:
        """SIGKILL: the gateway vanishes mid-flight, as a crashed machine would."""
        self.gateways[index].kill()

    def restart_gateway(self, index: int) -> None:
        gateway = self.gateways[index]
        gateway.kill()
        gateway.start(timeout=60)

    def restart_gateways(self) -> None:
        """Fresh gateway processes (so that a memory delta starts from a clean heap)."""
        with ThreadPoolExecutor(max_workers=max(1, len(self.gateways))) as pool:
            list(pool.map(lambda g: g.restart(timeout=60), self.gateways))

    # --- components down and up (chaos) ------------------------------------------------------

    def _service(self, component: str) -> ServiceProcess:
        if self.services is None:
            raise StackError(f"{component} is not a process of the bench's own stack")
        if component == "auth":
            return self.services.auth
        if component == "message":
            return self.services.message
        if component == "gateway":
            return self.gateways[0]
        raise StackError(f"no component {component!r}")

    def interrupt(self, component: str) -> None:
        """Redis and RabbitMQ stop cleanly (a restart); services and the database are SIGKILLed."""
        if component in ("redis", "rabbitmq"):
            if component not in self.private:
                raise StackError(f"{component} is shared, not the run's own: it is never stopped")
            self.private[component].stop()
        elif component == "mongodb":
            if self.mongo is None:
                raise StackError("the database is not the bench's own embedded server")
            self.mongo.process.kill()
            self.mongo.process.wait(10)
        else:
            self._service(component).kill()

    def resume(self, component: str, timeout: float = 60.0) -> None:
        """Start a component again, on the same port (and data)."""
        if component in ("redis", "rabbitmq"):
            self.private[component].start(timeout)
        elif component == "mongodb":
            assert self.mongo is not None
            assert self.mongo_storage is not None
            self.mongo = spawn_embedded_mongodb(
                self.mongo.port, str(self.mongo_storage), self.mongo.log_path
            )
        else:
            self._service(component).start(timeout)

    def heal(self) -> None:
        """Start whatever is down (a chaos run that stopped half-way must leave a whole stack)."""
        for name, server in self.private.items():
            if not server.running:
                self.resume(name)
        if self.mongo is not None and self.mongo.process.poll() is not None:
            self.resume("mongodb")
        if self.services is not None:
            for process in self.services.processes:
                if process.process is None or process.process.poll() is not None:
                    process.start(60)

    def readiness(self, timeout: float = 2.0) -> dict[str, int]:
        """`/readyz` status of every service (0: no answer)."""
        urls = {"auth": self.auth_url, "message": self.message_url}
        urls.update({f"gateway{i + 1}": url for i, url in enumerate(self.gateway_urls)})
        states = {}
        with httpx.Client(timeout=timeout) as client:
            for name, url in urls.items():
                try:
                    states[name] = client.get(url + "/readyz").status_code
                except httpx.HTTPError:
                    states[name] = 0
        return states

    # --- shutting down ---------------------------------------------------------------------------

    def close(self) -> None:
        if self.services is not None:
            self.services.stop()
        _stop_together(self.joined)
        self.joined.clear()
        if self.mongo is not None:
            self.mongo.stop()
            self.mongo = None
        if self.mongo_dir is not None:
            shutil.rmtree(self.mongo_dir, ignore_errors=True)
        elif self.drop_db and self.mongodb_url:
            with contextlib.suppress(Exception):
                drop_database(self.mongodb_url, self.db)
        if self.private:
            # Servers of the run's own: what they hold goes with them.
            for server in self.private.values():
                with contextlib.suppress(Exception):
                    server.close()
            self.private.clear()
        elif self.own:
            # Only a namespace of our own is ours to clean; a running stack's is not.
            with contextlib.suppress(Exception):
                _delete_redis_keys(self.redis_url, self.namespace)
            with contextlib.suppress(Exception):
                remove_service_namespace(self.amqp_url, self.namespace)


def _stop_together(processes: Iterable[ServiceProcess]) -> None:
    processes = list(processes)
    with ThreadPoolExecutor(max_workers=max(1, len(processes))) as pool:
        list(pool.map(lambda p: p.stop(timeout=20), processes))


def _delete_redis_keys(url: str, namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(f"{namespace}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


def _infrastructure() -> tuple[str, str]:
    try:
        redis_url = find_redis().url
        amqp_url = find_rabbitmq().url
    except ServiceNotFound as exc:
        raise StackError(str(exc)) from None
    return redis_url, amqp_url


def _private_infrastructure(stack: Stack) -> None:
    """A Redis and a RabbitMQ node of the run's own, started now (in parallel)."""
    try:
        stack.private["redis"] = PrivateRedis()
        stack.private["rabbitmq"] = PrivateRabbitMQ(name_prefix="chaos")
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda server: server.start(90), stack.private.values()))
    except PrivateServerError as exc:
        raise StackError(str(exc)) from None
    stack.redis_url = stack.private["redis"].url
    stack.amqp_url = stack.private["rabbitmq"].url


def start_own_stack(
    *,
    gateways: int,
    mongodb_url: str | None,
    db: str | None,
    extra_env: dict[str, str],
    log_root: Path | None = None,
    log: bool = True,
    private: bool = False,
) -> Stack:
    """Embedded MongoDB (unless a URL is given), auth, message and `gateways` gateways.

    `private`: on a Redis and a RabbitMQ of the run's own (chaos restarts them).
    """
    run_id = uuid.uuid4().hex[:8]
    namespace = f"bench{run_id}"
    redis_url, amqp_url = ("", "") if private else _infrastructure()
    log_dir = (log_root or BENCH_DIR / "logs") / run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        auth_url="",
        message_url="",
        gateway_urls=[],
        own=True,
        namespace=namespace,
        db=db or f"bench_{run_id}",
        redis_url=redis_url,
        amqp_url=amqp_url,
        log_dir=log_dir,
        drop_db=db is None,
    )
    try:
        if private:
            _private_infrastructure(stack)
            redis_url, amqp_url = stack.redis_url, stack.amqp_url
        if mongodb_url:
            stack.mongodb_url = mongodb_url
        else:
            if db is None:
                stack.mongo_dir = Path(tempfile.mkdtemp(prefix="mongo-", dir=BENCH_DIR))
                storage = stack.mongo_dir
            else:
                # A named database survives the run, so that its users can be reused.
                storage = BENCH_DIR / "mongo"
                storage.mkdir(parents=True, exist_ok=True)
            stack.mongo_storage = storage
            stack.mongo = spawn_embedded_mongodb(free_port(), str(storage), log_dir / "mongodb.log")
            stack.mongodb_url = stack.mongo.url
        key_file = (BENCH_DIR / "jwt-private.pem") if db else (log_dir / "jwt-private.pem")
        env = {
            **stack_env(
                redis_url=redis_url,
                amqp_url=amqp_url,
                mongodb_url=stack.mongodb_url,
                key_file=key_file,
                chat_env="dev",
                db=stack.db,
                namespace=namespace,
            ),
            # Long enough for any run, so that no token expires mid-measurement.
            "ACCESS_TOKEN_TTL_SECONDS": "14400",
            "DRAIN_SECONDS": "2",
            **extra_env,
        }
        stack.gateway_env = _unthrottled(extra_env)
        stack.services = Services.launch(
            env, log_dir, gateways=gateways, extra={"gateway": stack.gateway_env}
        )
        stack.auth_url = stack.services.auth.url
        stack.message_url = stack.services.message.url
        stack.gateways = stack.services.gateways
        stack.gateway_urls = [g.url for g in stack.gateways]
    except BaseException:
        stack.close()
        raise
    if log:
        servers = (
            f", private Redis {stack.redis_url} and RabbitMQ {stack.amqp_url}" if private else ""
        )
        print(
            f"bench stack up (namespace {namespace}, db {stack.db}, logs {log_dir}{servers})",
            file=sys.stderr,
            flush=True,
        )
    return stack


def external_stack(
    *,
    auth_url: str,
    message_url: str,
    gateway_urls: list[str],
    mongodb_url: str | None,
    db: str,
    namespace: str,
) -> Stack:
    """A running stack (`make dev`, say), reached by its URLs; nothing of it is stopped."""
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if not mongodb_url:
        for port in (27017, 27018):
            if port_open("127.0.0.1", port):
                mongodb_url = f"mongodb://127.0.0.1:{port}/?directConnection=true"
                break
    for url in (auth_url, message_url, *gateway_urls):
        host, port = _port_of(url, 80)
        if not port_open(host, port, timeout=2):
            raise StackError(f"nothing answers at {url}: start the stack (`make dev`) first")
    return Stack(
        auth_url=auth_url.rstrip("/"),
        message_url=message_url.rstrip("/"),
        gateway_urls=[u.rstrip("/") for u in gateway_urls],
        own=False,
        namespace=namespace,
        db=db,
        redis_url=redis_url,
        amqp_url=amqp_url,
        mongodb_url=mongodb_url or "",
        log_dir=BENCH_DIR / "logs" / f"ext-{uuid.uuid4().hex[:8]}",
    )


def own_gateways_for(stack: Stack, count: int, extra_env: dict[str, str]) -> None:
    """Gateways of the bench's own on a running stack's Redis, broker and namespace (storm).

    A crash test needs processes the bench may kill; these join the running stack as
    extra instances (same namespace, same auth) and are stopped after the scenario.
    """
    if stack.gateways:
        return
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    stack.gateway_env = _unthrottled(extra_env)
    env = {
        "CHAT_ENV": os.environ.get("CHAT_ENV", "dev"),
        "REDIS_URL": stack.redis_url,
        "AMQP_URL": stack.amqp_url,
        "NAMESPACE": stack.namespace,
        "AUTH_URL": stack.auth_url,
        "DRAIN_SECONDS": "2",
        **extra_env,
        **stack.gateway_env,
    }
    stack.joined = [ServiceProcess("chat-gateway", env, stack.log_dir) for _ in range(count)]
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(lambda g: g.start(60), stack.joined))
    stack.gateways = list(stack.joined)


def _unthrottled(extra_env: dict[str, str]) -> dict[str, str]:
    """The gateways' rate limits: far above the bench's, unless the run sets them itself."""
    return {**UNTHROTTLED, **{k: v for k, v in extra_env.items() if k in UNTHROTTLED}}


def stop_own_gateways(stack: Stack) -> None:
    if stack.own:
        return
    _stop_together(stack.joined)
    stack.joined.clear()
    stack.gateways = []
