"""`make dev`: the whole system on this machine, stopped with Ctrl-C.

Checks Redis and RabbitMQ, starts the embedded MongoDB-compatible server
unless MONGODB_URL is set, then auth (8001), message (8002) and two gateways
(8101, 8102), waits until each is ready and prints where the web client is.
Service logs go to .dev/logs/.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from chat_testkit.process import ServiceProcess
from chat_testkit.services import port_open, spawn_embedded_mongodb

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / ".dev"
LOGS = DEV / "logs"
GATEWAY_PORTS = (8101, 8102)


def fail(message: str) -> None:
    print(f"make dev: {message}", file=sys.stderr)
    raise SystemExit(1)


def require(url: str, name: str, how_to_start: str) -> None:
    parsed = urlparse(url)
    if not port_open(parsed.hostname or "127.0.0.1", parsed.port or 0, timeout=2):
        fail(
            f"{name} is not reachable at {parsed.hostname}:{parsed.port}. Start it: {how_to_start}"
        )


def main() -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    require(
        redis_url,
        "Redis",
        "redis-server --daemonize yes --port 6379 --save '' (apt-get install redis-server)",
    )
    require(amqp_url, "RabbitMQ", "rabbitmq-server -detached (apt-get install rabbitmq-server)")
    if not (ROOT / "services/gateway/src/chat_gateway/static/vendor/socket.io.min.js").exists():
        fail("the web client's library is missing: run `make web` (needs npm)")
    for port in (8001, 8002, *GATEWAY_PORTS):
        if port_open("127.0.0.1", port):
            fail(f"port {port} is already in use; stop whatever runs there first")

    started: list[ServiceProcess] = []
    embedded = None
    mongodb_url = os.environ.get("MONGODB_URL")
    if not mongodb_url:
        port = 27017 if not port_open("127.0.0.1", 27017) else 27018
        print(
            f"starting the embedded MongoDB-compatible server on 127.0.0.1:{port} (data in .dev/mongo)"
        )
        embedded = spawn_embedded_mongodb(port, str(DEV / "mongo"), LOGS / "mongodb.log")
        mongodb_url = embedded.url

    origins = ",".join(
        f"http://{host}:{port}" for host in ("127.0.0.1", "localhost") for port in GATEWAY_PORTS
    )
    env = {
        "CHAT_ENV": "dev",
        "MONGODB_URL": mongodb_url,
        "REDIS_URL": redis_url,
        "AMQP_URL": amqp_url,
        "AUTH_URL": "http://127.0.0.1:8001",
        "JWT_PRIVATE_KEY_FILE": str(DEV / "jwt-private.pem"),
        "CORS_ORIGINS": origins,
        "PUBLIC_AUTH_URL": "http://127.0.0.1:8001",
        "PUBLIC_MESSAGE_URL": "http://127.0.0.1:8002",
    }

    def stop_all(*_: object) -> None:
        print("\nstopping...")
        for process in reversed(started):
            process.stop(timeout=20)
        if embedded is not None:
            embedded.process.terminate()
            embedded.process.wait(20)
        raise SystemExit(0)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    try:
        for script, port in (
            ("chat-auth", 8001),
            ("chat-message", 8002),
            *(("chat-gateway", p) for p in GATEWAY_PORTS),
        ):
            process = ServiceProcess(script, env, LOGS, port=port)
            started.append(process)
            process.start(timeout=60)
            print(f"  {script:<13} {process.url}  (log: {process.log_path.relative_to(ROOT)})")
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        stop_all()
    print(
        "\nThe chat is running. Open the web client at http://127.0.0.1:8101/ "
        "(a second gateway serves http://127.0.0.1:8102/).\nCtrl-C stops everything."
    )
    while True:
        for process in started:
            if process.process is not None and process.process.poll() is not None:
                print(
                    f"{process.script} on {process.port} exited; see {process.log_path}",
                    file=sys.stderr,
                )
                stop_all()
        time.sleep(1)


if __name__ == "__main__":
    main()
