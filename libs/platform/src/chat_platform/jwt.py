"""Access tokens: Ed25519 keys as JWKs, and local verification from a JWKS.

Verification accepts EdDSA only; `alg: none`, HMAC tokens (made with the public
key as a secret) and every other algorithm fail before any key is touched.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud"]


class TokenError(Exception):
    """The token is missing, malformed, expired, or not signed by a key we trust."""


@dataclass(frozen=True)
class Claims:
    sub: str
    jti: str
    exp: int
    iat: int


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK, with an RFC 7638 thumbprint as its `kid`."""
    x = _b64url(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    kid = _b64url(hashlib.sha256(canonical.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}


class KeySource(Protocol):
    async def key_for(self, kid: str) -> Any | None: ...


class StaticKeys:
    """Keys known up front (the auth service verifies with its own public keys)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = {k["kid"]: jwt.PyJWK(k).key for k in jwks["keys"]}

    async def key_for(self, kid: str) -> Any | None:
        return self._keys.get(kid)


class JwksKeys:
    """Keys fetched from the auth service's JWKS, cached, refetched on an unknown `kid`.

    Refetches are spaced by `min_refresh_interval` so that a flood of tokens
    with random `kid`s cannot turn into a flood of requests to the auth service.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        max_age: float = 300.0,
        min_refresh_interval: float = 5.0,
    ) -> None:
        self.url = url
        self.client = client
        self.max_age = max_age
        self.min_refresh_interval = min_refresh_interval
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._attempted_at = -1e9
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str) -> Any | None:
        stale = time.monotonic() - self._fetched_at > self.max_age
        if kid not in self._keys or stale:
            await self.refresh()
        return self._keys.get(kid)

    async def refresh(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if now - self._attempted_at < self.min_refresh_interval:
                return
            self._attempted_at = now
            try:
                response = await self.client.get(self.url, timeout=3.0)
                response.raise_for_status()
                keys = {}
                for jwk in response.json()["keys"]:
                    if jwk.get("alg", ALGORITHM) != ALGORITHM:
                        continue
                    try:
                        keys[jwk["kid"]] = jwt.PyJWK(jwk).key
                    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
                        # One key we cannot read must not cost us the others.
                        log.warning("jwks entry skipped", extra={"kid": jwk.get("kid")})
            except Exception as exc:
                # Keep the keys we had: the auth service being down must not log everyone out.
                log.warning("jwks fetch failed", extra={"url": self.url, "error": str(exc)})
                return
            self._keys = keys
            self._fetched_at = now

    async def check(self) -> None:
        if not self._keys:
            await self.refresh()
        if not self._keys:
            raise TokenError("no verification keys (JWKS unreachable)")


class TokenVerifier:
    def __init__(self, keys: KeySource, *, issuer: str, audience: str, leeway: float = 5.0):
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    async def verify(self, token: object) -> Claims:
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise TokenError("missing or malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise TokenError("unsupported token algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenError("token has no key id")
        key = await self.keys.key_for(kid)
        if key is None:
            raise TokenError("token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token expired") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("invalid token") from exc
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("jti"), str):
            raise TokenError("invalid token claims")
        return Claims(sub=claims["sub"], jti=claims["jti"], exp=claims["exp"], iat=claims["iat"])
