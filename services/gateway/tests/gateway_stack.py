"""The services a gateway test runs: auth, message and gateways, as real processes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from chat_testkit import ServiceProcess
from chat_testkit.amqp import remove_service_namespace

# The durable queues the services declare under a namespace (each with a `.dead` twin).
# Small timeouts so that the behaviour under test shows up in a second or two, and rate
# limits out of the way of tests that are not about them (one test sends hundreds of events).
FAST_GATEWAY_ENV = {
    "TYPING_TIMEOUT_SECONDS": "1",
    "TOKEN_GRACE_SECONDS": "1",
    "DRAIN_SECONDS": "2",
    "RATE_SEND": "1000",
    "RATE_SEND_BURST": "1000",
    "RATE_TYPING": "1000",
    "RATE_TYPING_BURST": "1000",
    "RATE_OTHER": "1000",
    "RATE_OTHER_BURST": "1000",
}


@dataclass
class Stack:
    start: Callable[..., ServiceProcess]
    env: dict[str, str]
    gateway_env: dict[str, str]
    auth: ServiceProcess
    message: ServiceProcess
    gateways: list[ServiceProcess]
    # Every process started for this stack, those started later by a test included.
    processes: list[ServiceProcess] = field(default_factory=list)

    def start_gateway(self, **env: str) -> ServiceProcess:
        """One more gateway on the same auth, broker, Redis and namespace."""
        gateway = self.start("chat-gateway", AUTH_URL=self.auth.url, **{**self.gateway_env, **env})
        self.processes.append(gateway)
        return gateway

    def start_other(self, script: str, **env: str) -> ServiceProcess:
        process = self.start(script, **env)
        self.processes.append(process)
        return process


def build_stack(
    start: Callable[..., ServiceProcess],
    env: dict[str, str],
    gateway_env: dict[str, str],
    gateways: int = 2,
) -> Stack:
    """Auth first (the others fetch its JWKS), then message and the gateways side by side."""
    auth = start("chat-auth")
    with ThreadPoolExecutor(max_workers=gateways + 1) as pool:
        message_future = pool.submit(start, "chat-message", AUTH_URL=auth.url)
        gateway_futures = [
            pool.submit(start, "chat-gateway", AUTH_URL=auth.url, **gateway_env)
            for _ in range(gateways)
        ]
        message = message_future.result()
        started = [f.result() for f in gateway_futures]
    return Stack(
        start=start,
        env=env,
        gateway_env=gateway_env,
        auth=auth,
        message=message,
        gateways=started,
        processes=[auth, message, *started],
    )


def remove_namespace(env: dict[str, str]) -> None:
    """Delete what the stopped services declared on the shared broker under their namespace."""
    remove_service_namespace(env["AMQP_URL"], env["NAMESPACE"])
