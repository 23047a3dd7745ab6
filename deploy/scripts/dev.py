"""`make dev`: the whole system on this machine, stopped with Ctrl-C.

Finds Redis and RabbitMQ as the test kit does, starts the embedded
MongoDB-compatible server unless MONGODB_URL is set, then runs the test kit's
stack (`chat_testkit.stack`) on fixed ports: auth (8001), message (8002) and
two gateways (8101, 8102). It waits until each is ready and prints where the
web client is. Service logs go to .dev/logs/.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from chat_testkit.services import (
    ServiceNotFound,
    find_rabbitmq,
    find_redis,
    found,
    port_open,
    spawn_embedded_mongodb,
)
from chat_testkit.stack import Ports, Stack, stack_env

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / ".dev"
LOGS = DEV / "logs"
PORTS = Ports(auth=8001, message=8002, gateways=(8101, 8102))
WEB_LIBRARY = ROOT / "services/gateway/src/chat_gateway/static/vendor/socket.io.min.js"


def fail(message: str) -> None:
    print(f"make dev: {message}", file=sys.stderr)
    raise SystemExit(1)


def interrupt(signum: int, frame: FrameType | None) -> None:
    # Installed for SIGINT too: a shell starts a background job with SIGINT ignored,
    # and `kill -INT` must still stop it. SIGTERM (a supervisor) stops it the same way.
    raise KeyboardInterrupt


def watch(stack: Stack) -> None:
    """Until Ctrl-C, or until a service exits on its own."""
    while True:
        for process in stack.processes:
            if process.process is not None and process.process.poll() is not None:
                print(
                    f"{process.script} on {process.port} exited; see {process.log_path}",
                    file=sys.stderr,
                )
                return
        time.sleep(1)


def run(resources: contextlib.ExitStack) -> None:
    redis_url = resources.enter_context(found(find_redis)).url
    amqp_url = resources.enter_context(found(find_rabbitmq)).url
    mongodb_url = os.environ.get("MONGODB_URL")
    if not mongodb_url:
        port = 27017 if not port_open("127.0.0.1", 27017) else 27018
        print(
            f"starting the embedded MongoDB-compatible server on 127.0.0.1:{port} (data in .dev/mongo)"
        )
        embedded = spawn_embedded_mongodb(port, str(DEV / "mongo"), LOGS / "mongodb.log")
        resources.callback(embedded.stop)
        mongodb_url = embedded.url
    env = stack_env(
        redis_url=redis_url,
        amqp_url=amqp_url,
        mongodb_url=mongodb_url,
        key_file=DEV / "jwt-private.pem",
        chat_env="dev",
    )
    stack = resources.enter_context(Stack.launch(env, LOGS, ports=PORTS))
    for process in stack.processes:
        print(f"  {process.script:<13} {process.url}  (log: {process.log_path.relative_to(ROOT)})")
    print(
        "\nThe chat is running. Open the web client at http://127.0.0.1:8101/ "
        "(a second gateway serves http://127.0.0.1:8102/).\nCtrl-C stops everything."
    )
    try:
        watch(stack)
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave services running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nstopping...")


def main() -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    if not WEB_LIBRARY.exists():
        fail("the web client's library is missing: run `make web` (needs npm)")
    for port in (PORTS.auth, PORTS.message, *PORTS.gateways):
        if port_open("127.0.0.1", port):
            fail(f"port {port} is already in use; stop whatever runs there first")
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        with contextlib.ExitStack() as resources:
            run(resources)
    except KeyboardInterrupt:
        pass
    except (ServiceNotFound, RuntimeError) as exc:
        # RuntimeError: a service that would not start (its log's tail is in the message).
        fail(str(exc))


if __name__ == "__main__":
    main()
