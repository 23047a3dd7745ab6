"""The web client: static files from this package and the REST addresses it should use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from chat_gateway.settings import GatewaySettings

STATIC_DIR = Path(__file__).parent / "static"


def mount_web_client(app: FastAPI, settings: GatewaySettings) -> None:
    router = APIRouter(include_in_schema=False)

    connect_sources = " ".join(
        [
            "'self'",
            "ws:",
            "wss:",
            *(u for u in (settings.public_auth_url, settings.public_message_url) if u),
        ]
    )
    page_headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; img-src 'self' blob: data:; "
            f"media-src 'self' blob:; connect-src {connect_sources}; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }

    @router.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=page_headers)

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
