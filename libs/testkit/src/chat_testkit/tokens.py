"""Hand-made JWTs for attack tests: `alg: none`, HMAC with a public key, foreign signatures.

JWT libraries refuse to produce most of these, which is the point of building
them by hand here. Only the standard library is used: the caller passes the
signing function (an Ed25519 private key's `sign`, or `hs256(secret)`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

Signer = Callable[[bytes], bytes]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256(secret: bytes) -> Signer:
    def sign(signing_input: bytes) -> bytes:
        return hmac.new(secret, signing_input, hashlib.sha256).digest()

    return sign


def encode(header: dict[str, Any], claims: Any, sign: Signer | None) -> str:
    """`header.claims.signature`; no signer gives the empty signature of `alg: none`."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign is not None else b""
    return f"{signing_input}.{b64url(signature)}"


def access_claims(
    sub: str,
    *,
    issuer: str = "chat-auth",
    audience: str = "chat",
    ttl: float = 900,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims the auth service puts in an access token (`ttl` < 0 gives an expired one)."""
    issued = int(now if now is not None else time.time())
    return {
        "sub": sub,
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": int(issued + ttl),
        "jti": uuid.uuid4().hex,
    }
