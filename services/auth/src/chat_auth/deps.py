"""FastAPI dependencies: the service context and the client's address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chat_auth import addresses
from chat_auth.context import AuthContext


def get_context(request: Request) -> AuthContext:
    ctx: AuthContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AuthContext, Depends(get_context)]


def client_address(request: Request, ctx: Ctx) -> str:
    return addresses.client_address(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        ctx.settings.trusted_networks,
    )


ClientAddress = Annotated[str, Depends(client_address)]
