"""Liveness, readiness with one check per dependency, and the /metrics route."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from chat_platform.metrics import metrics_endpoint

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[object]]


class Health:
    """Named dependency checks; not ready while any fails or while draining."""

    def __init__(self, timeout: float = 2.0) -> None:
        self.checks: dict[str, Check] = {}
        self.timeout = timeout
        self.draining = False

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def failing(self) -> dict[str, str]:
        async def run(name: str, check: Check) -> tuple[str, str | None]:
            try:
                await asyncio.wait_for(check(), self.timeout)
            except Exception as exc:
                return name, f"{type(exc).__name__}: {exc}"[:200] or "failed"
            return name, None

        results = await asyncio.gather(*(run(n, c) for n, c in self.checks.items()))
        return {name: problem for name, problem in results if problem is not None}

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @router.get("/readyz")
        async def readyz() -> JSONResponse:
            if self.draining:
                return _unready({"draining": "shutting down"})
            failing = await self.failing()
            if failing:
                return _unready(failing)
            return JSONResponse({"status": "ready", "checks": sorted(self.checks)})

        router.add_api_route("/metrics", metrics_endpoint, methods=["GET"])
        return router


def _unready(failing: dict[str, str]) -> JSONResponse:
    names = ", ".join(sorted(failing))
    return JSONResponse(
        {
            "error": {
                "code": "unavailable",
                "message": f"Not ready: {names}.",
                "details": {"failing": failing},
            }
        },
        status_code=503,
    )
