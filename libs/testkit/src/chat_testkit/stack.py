"""The whole chat as processes on this machine: auth, message and N gateways, wired together.

The black-box and browser tests, the bench's own stack and `make dev` all run
the system through `Stack.launch`. Every port is chosen before anything starts,
so each service is told the others' addresses at once: message and the
gateways get the auth service's (for its signing keys), auth and message allow
the gateways' origins (a page served by a gateway calls them directly, as in
`make dev`), and the gateways tell the web client where auth and message are.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from chat_testkit.process import ServiceProcess
from chat_testkit.services import free_port

Service = Literal["auth", "message", "gateway"]
SCRIPTS: dict[Service, str] = {
    "auth": "chat-auth",
    "message": "chat-message",
    "gateway": "chat-gateway",
}


def stack_env(
    *,
    redis_url: str,
    amqp_url: str,
    mongodb_url: str,
    key_file: Path,
    chat_env: Literal["dev", "test"],
    db: str | None = None,
    namespace: str | None = None,
) -> dict[str, str]:
    """The environment every service of one stack shares.

    Without `db` and `namespace` the services use their defaults, which are the
    contract's names (`make dev`); tests and the bench pass names of their own
    so that they never meet another run on the same servers.
    """
    env = {
        "CHAT_ENV": chat_env,
        "REDIS_URL": redis_url,
        "AMQP_URL": amqp_url,
        "MONGODB_URL": mongodb_url,
        "JWT_PRIVATE_KEY_FILE": str(key_file),
        # Every user of a test, the bench or `make dev` registers and logs in from one address:
        # auth's per-address budgets, sized for the public, would refuse them.
        "RATE_REGISTER": "100000/100000",
        "RATE_LOGIN": "100000/100000",
    }
    if db is not None:
        env["MONGODB_DB"] = db
    if namespace is not None:
        env["NAMESPACE"] = namespace
    return env


@dataclass(frozen=True)
class Ports:
    auth: int
    message: int
    gateways: tuple[int, ...]

    @classmethod
    def free(cls, gateways: int) -> Ports:
        return cls(free_port(), free_port(), tuple(free_port() for _ in range(gateways)))


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


@dataclass
class Stack:
    """Auth, message and gateways on `ports`, each with `env`, the links and its `extra`.

    `extra` maps "auth", "message" or "gateway" to settings of that service
    only (they win over `env`). `processes` holds every process of the stack,
    those a test starts later with `start()` included; `stop()` stops them all.
    """

    env: dict[str, str]
    log_dir: Path
    ports: Ports
    extra: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    timeout: float = 60.0
    processes: list[ServiceProcess] = field(default_factory=list, init=False)
    auth: ServiceProcess = field(init=False)
    message: ServiceProcess = field(init=False)
    gateways: list[ServiceProcess] = field(init=False)

    def __post_init__(self) -> None:
        unknown = set(self.extra) - set(SCRIPTS)
        if unknown:
            raise ValueError(f"extra settings for no service of a stack: {sorted(unknown)}")
        self.auth = self._add("auth", self.ports.auth)
        self.message = self._add("message", self.ports.message)
        self.gateways = [self._add("gateway", port) for port in self.ports.gateways]

    @classmethod
    def launch(
        cls,
        env: Mapping[str, str],
        log_dir: Path,
        *,
        gateways: int = 2,
        ports: Ports | None = None,
        extra: Mapping[str, Mapping[str, str]] | None = None,
        timeout: float = 60.0,
    ) -> Stack:
        """Start the stack and wait until every service is ready; stop it all if one is not.

        `ports` fixes every port (then `gateways` is ignored); by default they are free ones.
        """
        stack = cls(dict(env), log_dir, ports or Ports.free(gateways), dict(extra or {}), timeout)
        try:
            # Auth first: the others fetch its signing keys as they start.
            stack.auth.start(timeout)
            with ThreadPoolExecutor(max_workers=1 + len(stack.gateways)) as pool:
                list(pool.map(lambda p: p.start(timeout), [stack.message, *stack.gateways]))
        except BaseException:
            stack.stop()
            raise
        return stack

    @property
    def links(self) -> dict[str, str]:
        """The addresses every service of the stack is given."""
        origins = [
            f"http://{host}:{port}"
            for host in ("127.0.0.1", "localhost")
            for port in self.ports.gateways
        ]
        return {
            "AUTH_URL": _url(self.ports.auth),
            "CORS_ORIGINS": ",".join(origins),
            "PUBLIC_AUTH_URL": _url(self.ports.auth),
            "PUBLIC_MESSAGE_URL": _url(self.ports.message),
        }

    def env_of(self, service: Service, **env: str) -> dict[str, str]:
        """The environment a process of `service` gets in this stack, with `env` on top."""
        return {**self.env, **self.links, **self.extra.get(service, {}), **env}

    def _add(self, service: Service, port: int | None = None, /, **env: str) -> ServiceProcess:
        """One more process of `service` in this stack, not started yet."""
        process = ServiceProcess(
            SCRIPTS[service],
            self.env_of(service, **env),
            self.log_dir,
            port=free_port() if port is None else port,
        )
        self.processes.append(process)
        return process

    def start(self, service: Service, **env: str) -> ServiceProcess:
        """One more ready process of `service` on a free port (another gateway, say)."""
        return self._add(service, None, **env).start(self.timeout)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to every process at once (each drains on its own), then wait for each."""
        with ThreadPoolExecutor(max_workers=max(1, len(self.processes))) as pool:
            list(pool.map(lambda p: p.stop(timeout), self.processes))

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
