"""The web client: static files from this package and the REST addresses it should use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from chat_gateway.settings import GatewaySettings

STATIC_DIR = Path(__file__).parent / "static"


# A Host header as browsers send it: a name or address, maybe a port. Anything else (spaces,
# `;`, quotes) could add directives to the policy, so it is left out rather than quoted.
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$"
)


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute http(s) URL; None for a relative or odd one."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not _HOST.match(parts.netloc):
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def connect_sources(settings: GatewaySettings, host: str | None) -> list[str]:
    """Where the page may connect: its own origin (REST and the socket, which the web client
    opens to the page's host), and the REST origins it is configured with; no wildcard."""
    sources = ["'self'"]
    if host and _HOST.match(host):
        # `'self'` does not cover WebSocket schemes in every browser: name them.
        sources += [f"ws://{host.lower()}", f"wss://{host.lower()}"]
    for url in (settings.public_auth_url, settings.public_message_url):
        origin = origin_of(url) if url else None
        if origin and origin not in sources:
            sources.append(origin)
    return sources


def content_security_policy(settings: GatewaySettings, host: str | None) -> str:
    return (
        "default-src 'self'; script-src 'self'; img-src 'self' blob: data:; "
        f"media-src 'self' blob:; connect-src {' '.join(connect_sources(settings, host))}; "
        "frame-ancestors 'none'"
    )


def mount_web_client(app: FastAPI, settings: GatewaySettings) -> None:
    router = APIRouter(include_in_schema=False)
    page_headers = {
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }

    @router.get("/")
    async def index(request: Request) -> FileResponse:
        # The policy names the host the page was asked by: the one its socket will open to.
        policy = content_security_policy(settings, request.headers.get("host"))
        headers = {**page_headers, "Content-Security-Policy": policy, "Vary": "Host"}
        return FileResponse(STATIC_DIR / "index.html", headers=headers)

    @router.get("/config.json")
    async def config() -> dict[str, str]:
        return {"auth_url": settings.public_auth_url, "message_url": settings.public_message_url}

    app.include_router(router)
    app.mount(
        "/static", RevalidatedStaticFiles(directory=STATIC_DIR, check_dir=False), name="static"
    )


class RevalidatedStaticFiles(StaticFiles):
    """Static files that browsers revalidate (cheaply, by ETag) so an upgrade is never stale."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response
