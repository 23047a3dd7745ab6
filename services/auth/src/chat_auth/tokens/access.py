"""Signing access tokens with the service's Ed25519 key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chat_platform.jwt import ALGORITHM, public_jwk


class AccessTokenSigner:
    def __init__(self, key: Ed25519PrivateKey, *, issuer: str, audience: str, ttl: timedelta):
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self.jwk = public_jwk(key.public_key())

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def sign(self, user_id: str, *, now: datetime | None = None) -> str:
        issued = now or datetime.now(UTC)
        claims = {
            "sub": user_id,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(issued.timestamp()),
            "exp": int((issued + self.ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.jwk["kid"]})
