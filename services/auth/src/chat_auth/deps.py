"""FastAPI dependencies: the service context and the caller's address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chat_auth.context import AuthContext


def get_context(request: Request) -> AuthContext:
    ctx: AuthContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AuthContext, Depends(get_context)]


def client_address(request: Request, ctx: Ctx) -> str:
    if ctx.settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]
