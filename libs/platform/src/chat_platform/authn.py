"""Authenticating REST callers by their bearer access token."""

from __future__ import annotations

from chat_contracts import ErrorCode
from chat_platform.errors import ApiError
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
