"""Authenticating REST callers by their bearer access token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chat_contracts.errors import ApiError, ErrorCode
from chat_platform.jwt import TokenError, TokenVerifier


async def bearer_user_id(authorization: str | None, verifier: TokenVerifier) -> str:
    """The user id of a valid `Authorization: Bearer <token>` header, else 401."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(ErrorCode.UNAUTHORIZED, "A bearer access token is required.")
    try:
        claims = await verifier.verify(token.strip())
    except TokenError as exc:
        raise ApiError(ErrorCode.UNAUTHORIZED, f"Access token rejected: {exc}.") from None
    return claims.sub


async def _caller(request: Request) -> str:
    # Each service's composition root puts its verifier on the app's state at start-up.
    verifier: TokenVerifier = request.app.state.token_verifier
    return await bearer_user_id(request.headers.get("authorization"), verifier)


CallerId = Annotated[str, Depends(_caller)]
"""A route parameter holding the authenticated caller's user id."""
