"""FastAPI dependencies: the service context and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chat_auth.context import AuthContext
from chat_platform.authn import bearer_user_id


def get_context(request: Request) -> AuthContext:
    ctx: AuthContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AuthContext, Depends(get_context)]


async def current_user_id(request: Request, ctx: Ctx) -> str:
    return await bearer_user_id(request.headers.get("authorization"), ctx.verifier)


CurrentUserId = Annotated[str, Depends(current_user_id)]


def client_address(request: Request, ctx: Ctx) -> str:
    if ctx.settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]
