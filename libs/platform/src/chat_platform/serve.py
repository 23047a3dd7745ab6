"""The command line every service shares: `--host`, `--port`, then uvicorn."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn

from chat_platform.logging import configure_logging
from chat_platform.settings import PlatformSettings

log = logging.getLogger(__name__)


def parse_args(
    service: str, default_port: int, argv: list[str] | None = None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"chat-{service}", description=f"Run the chat {service} service."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=default_port, help="TCP port")
    return parser.parse_args(argv)


def run(
    app: Any,
    *,
    host: str,
    port: int,
    server_factory: Callable[[uvicorn.Config], uvicorn.Server] = uvicorn.Server,
) -> None:
    """Serve an ASGI app; logging is already configured, so uvicorn's own config is off."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=30,
        # Longer than a proxy keeps idle upstream connections (nginx: 60 s), so the server
        # never closes one at the moment the proxy (or any pooled client) reuses it.
        timeout_keep_alive=75,
        server_header=False,
        # uvicorn would otherwise take the client address from X-Forwarded-For of any peer on
        # 127.0.0.1; which proxies to believe is each service's setting (auth: TRUSTED_PROXIES).
        proxy_headers=False,
    )
    server_factory(config).run()


S = TypeVar("S", bound=PlatformSettings)


def main_of(
    service: str,
    default_port: int,
    settings_type: type[S],
    create_app: Callable[[S], Any],
) -> Callable[[list[str] | None], None]:
    """The console script of a service: parse the command line, read settings, log, serve."""

    def main(argv: list[str] | None = None) -> None:
        args = parse_args(service, default_port, argv)
        settings = settings_type()
        configure_logging(service, settings.log_level)
        run(create_app(settings), host=args.host, port=args.port)

    return main
