"""`chat-gateway --host H --port P`: run a gateway; SIGTERM drains it before it stops."""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType

import uvicorn

from chat_gateway.app import GatewayApp, create_app
from chat_gateway.settings import GatewaySettings
from chat_platform.logging import configure_logging
from chat_platform.serve import parse_args, run

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """On the first SIGTERM, drain the gateway, then stop as uvicorn would; a second one stops now."""

    def __init__(self, config: uvicorn.Config, gateway: GatewayApp) -> None:
        super().__init__(config)
        self.gateway = gateway
        self._draining: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self._draining is not None:
            super().handle_exit(sig, frame)
            return
        self._draining = asyncio.get_event_loop().create_task(self._drain_then_exit(sig, frame))

    async def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
        try:
            await self.gateway.drain()
        except Exception:
            log.exception("drain failed")
            super().handle_exit(sig, frame)
            return
        # A completed drain is a clean stop, so the exit status is 0. uvicorn's own handler
        # would record the signal and raise it again after shutdown: death by SIGTERM.
        self.should_exit = True


def main(argv: list[str] | None = None) -> None:
    args = parse_args("gateway", 8100, argv)
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    gateway = create_app(settings)
    run(
        gateway.asgi,
        host=args.host,
        port=args.port,
        server_factory=lambda config: DrainingServer(config, gateway),
    )


if __name__ == "__main__":
    main()
