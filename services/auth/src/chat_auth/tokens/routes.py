"""HTTP routes of /v1/auth and the JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from chat_auth import accounts
from chat_auth.deps import ClientAddress, Ctx
from chat_auth.users.models import LoginRequest, RefreshRequest, RegisterRequest

router = APIRouter()


@router.post("/v1/auth/register", status_code=201)
async def register(body: RegisterRequest, ctx: Ctx, address: ClientAddress) -> dict[str, Any]:
    """Create a user and log them in."""
    return await accounts.register(ctx, body, address)


@router.post("/v1/auth/login")
async def login(body: LoginRequest, ctx: Ctx, address: ClientAddress) -> dict[str, Any]:
    """Log in with a username or email and a password."""
    return await accounts.log_in(ctx, body, address)


@router.post("/v1/auth/refresh")
async def refresh(body: RefreshRequest, ctx: Ctx) -> dict[str, Any]:
    """Trade a refresh token for a new access and refresh token pair."""
    return await accounts.refresh(ctx, body.refresh_token)


@router.post("/v1/auth/logout", status_code=204)
async def logout(body: RefreshRequest, ctx: Ctx) -> Response:
    """End the login the refresh token belongs to."""
    await accounts.log_out(ctx, body.refresh_token)
    return Response(status_code=204)


@router.get("/.well-known/jwks.json")
async def jwks(ctx: Ctx, response: Response) -> dict[str, Any]:
    """Public keys that verify access tokens."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return ctx.signer.jwks
