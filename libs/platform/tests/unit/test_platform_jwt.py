"""Local verification of access tokens, and the JWKS cache behind it.

The JWKS tests talk to a real HTTP server on 127.0.0.1 (aiohttp), since the
refetch and throttling rules are about real requests reaching the auth service.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt as pyjwt
import pytest
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chat_platform.jwt import JwksKeys, StaticKeys, TokenError, TokenVerifier, public_jwk
from chat_testkit import free_port
from chat_testkit.tokens import access_claims, b64url, encode, hs256

ISSUER = "chat-auth"
AUDIENCE = "chat"


@dataclass
class SigningKey:
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def jwk(self) -> dict[str, str]:
        return public_jwk(self.private.public_key())

    @property
    def kid(self) -> str:
        return self.jwk["kid"]

    def token(self, claims: Any = None, *, kid: str | None = None, **header: Any) -> str:
        claims = access_claims("user-1") if claims is None else claims
        return encode(
            {"alg": "EdDSA", "typ": "JWT", "kid": kid or self.kid, **header},
            claims,
            self.private.sign,
        )


@pytest.fixture
def key() -> SigningKey:
    return SigningKey()


@pytest.fixture
def verifier(key: SigningKey) -> TokenVerifier:
    return TokenVerifier(StaticKeys({"keys": [key.jwk]}), issuer=ISSUER, audience=AUDIENCE)


def test_public_jwk_kid_is_the_rfc7638_thumbprint() -> None:
    # The example key and thumbprint of RFC 8037, appendix A.2 and A.3.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "="))
    assert public_jwk(public) == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": x,
        "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        "alg": "EdDSA",
        "use": "sig",
    }


async def test_valid_token_gives_its_claims(key: SigningKey, verifier: TokenVerifier) -> None:
    claims = access_claims("user-1")
    verified = await verifier.verify(key.token(claims))
    assert (verified.sub, verified.jti, verified.exp, verified.iat) == (
        "user-1",
        claims["jti"],
        claims["exp"],
        claims["iat"],
    )


async def test_token_made_by_pyjwt_verifies(key: SigningKey, verifier: TokenVerifier) -> None:
    token = pyjwt.encode(
        access_claims("user-2"), key.private, algorithm="EdDSA", headers={"kid": key.kid}
    )
    assert (await verifier.verify(token)).sub == "user-2"


async def test_expired_token_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    with pytest.raises(TokenError, match="expired"):
        await verifier.verify(key.token(access_claims("user-1", ttl=-60)))


async def test_expiry_within_leeway_is_tolerated(key: SigningKey, verifier: TokenVerifier) -> None:
    # Clocks of two hosts differ by a little; the leeway (5 s) absorbs that, no more.
    assert await verifier.verify(key.token(access_claims("user-1", ttl=-2)))


async def test_token_from_another_key_with_our_kid_is_refused(
    key: SigningKey, verifier: TokenVerifier
) -> None:
    with pytest.raises(TokenError, match="invalid token"):
        await verifier.verify(SigningKey().token(kid=key.kid))


async def test_token_from_another_key_is_refused(verifier: TokenVerifier) -> None:
    with pytest.raises(TokenError, match="unknown key"):
        await verifier.verify(SigningKey().token())


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
async def test_unsigned_token_is_refused(
    alg: str, key: SigningKey, verifier: TokenVerifier
) -> None:
    token = encode({"alg": alg, "typ": "JWT", "kid": key.kid}, access_claims("user-1"), None)
    with pytest.raises(TokenError, match="algorithm"):
        await verifier.verify(token)


def _public_secrets(key: SigningKey) -> dict[str, bytes]:
    public = key.private.public_key()
    return {
        "raw": public.public_bytes(Encoding.Raw, PublicFormat.Raw),
        "pem": public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        "der": public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        "jwk-x": key.jwk["x"].encode(),
        "jwk-json": json.dumps(key.jwk).encode(),
    }


@pytest.mark.parametrize("secret", ["raw", "pem", "der", "jwk-x", "jwk-json"])
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hmac_token_keyed_with_the_public_key_is_refused(
    alg: str, secret: str, key: SigningKey, verifier: TokenVerifier
) -> None:
    token = encode(
        {"alg": alg, "typ": "JWT", "kid": key.kid},
        access_claims("user-1"),
        hs256(_public_secrets(key)[secret]),
    )
    with pytest.raises(TokenError, match="algorithm"):
        await verifier.verify(token)


async def test_hmac_signature_under_an_eddsa_header_is_refused(
    key: SigningKey, verifier: TokenVerifier
) -> None:
    token = encode(
        {"alg": "EdDSA", "kid": key.kid},
        access_claims("user-1"),
        hs256(_public_secrets(key)["pem"]),
    )
    with pytest.raises(TokenError):
        await verifier.verify(token)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "Ed25519", "eddsa"])
async def test_other_algorithms_are_refused(
    alg: str, key: SigningKey, verifier: TokenVerifier
) -> None:
    with pytest.raises(TokenError, match="algorithm"):
        await verifier.verify(key.token(alg=alg))


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "jti", "iss", "aud"])
async def test_token_without_a_required_claim_is_refused(
    claim: str, key: SigningKey, verifier: TokenVerifier
) -> None:
    claims = access_claims("user-1")
    del claims[claim]
    with pytest.raises(TokenError):
        await verifier.verify(key.token(claims))


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("aud", "other-audience"),
        ("aud", ["other-audience"]),
        ("iss", "someone-else"),
        ("sub", 42),
        ("sub", ["user-1"]),
        ("jti", 7),
        ("exp", "tomorrow"),
        ("nbf", int(time.time()) + 3600),
    ],
)
async def test_token_with_a_wrong_claim_is_refused(
    claim: str, value: Any, key: SigningKey, verifier: TokenVerifier
) -> None:
    claims = {**access_claims("user-1"), claim: value}
    with pytest.raises(TokenError):
        await verifier.verify(key.token(claims))


def _garbage(kid: str) -> list[Any]:
    header = b64url(json.dumps({"alg": "EdDSA", "kid": kid}).encode())
    sig = b64url(b"sig")
    not_utf8 = b64url(bytes([0xFF, 0xFE]))
    return [
        None,
        42,
        b"bytes.are.not.tokens",
        "",
        " ",
        "Bearer",
        ".",
        "..",
        "...",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "é.é.é",
        "\x00\x00\x00",
        "x" * 5000,
        f"{header}.!!!.sig",
        f"{header}.{b64url(b'[1, 2]')}.{sig}",
        f"{header}.{not_utf8}.{sig}",
        f"{b64url(b'[1]')}.e30.sig",
        f"{b64url(b'not json')}.e30.sig",
        f"{b64url(json.dumps({'alg': 'EdDSA'}).encode())}.e30.sig",
        f"{b64url(json.dumps({'alg': 'EdDSA', 'kid': 5}).encode())}.e30.sig",
        f"{b64url(json.dumps({'alg': ['EdDSA'], 'kid': kid}).encode())}.e30.sig",
    ]


async def test_garbage_is_refused_with_token_error_only(
    key: SigningKey, verifier: TokenVerifier
) -> None:
    for garbage in _garbage(key.kid):
        with pytest.raises(TokenError):
            await verifier.verify(garbage)


@pytest.mark.parametrize("claims", [[1, 2], "user-1", None, 3])
async def test_signed_claims_that_are_not_an_object_are_refused(
    claims: Any, key: SigningKey, verifier: TokenVerifier
) -> None:
    token = encode({"alg": "EdDSA", "kid": key.kid}, claims, key.private.sign)
    with pytest.raises(TokenError):
        await verifier.verify(token)


async def test_static_keys_know_only_their_own_kids(key: SigningKey) -> None:
    keys = StaticKeys({"keys": [key.jwk]})
    assert await keys.key_for(key.kid) is not None
    assert await keys.key_for(SigningKey().kid) is None


# --- JWKS over HTTP -------------------------------------------------------------------------


@dataclass
class JwksServer:
    url: str
    jwks: dict[str, Any]
    status: int = 200
    hits: int = 0


@pytest_asyncio.fixture
async def jwks_server(key: SigningKey) -> AsyncIterator[JwksServer]:
    server = JwksServer(url="", jwks={"keys": [key.jwk]})

    async def serve(_: web.Request) -> web.Response:
        server.hits += 1
        if server.status != 200:
            return web.json_response({"error": "down"}, status=server.status)
        return web.json_response(server.jwks)

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}/.well-known/jwks.json"
    yield server
    await runner.cleanup()


@pytest_asyncio.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _jwks_verifier(keys: JwksKeys) -> TokenVerifier:
    return TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)


async def test_jwks_is_fetched_once_for_known_keys(
    key: SigningKey, jwks_server: JwksServer, http_client: httpx.AsyncClient
) -> None:
    verifier = _jwks_verifier(JwksKeys(jwks_server.url, http_client))
    for _ in range(20):
        assert (await verifier.verify(key.token())).sub == "user-1"
    assert jwks_server.hits == 1


async def test_unknown_kid_triggers_one_refetch_that_finds_a_rotated_key(
    key: SigningKey, jwks_server: JwksServer, http_client: httpx.AsyncClient
) -> None:
    verifier = _jwks_verifier(JwksKeys(jwks_server.url, http_client, min_refresh_interval=0.2))
    await verifier.verify(key.token())
    assert jwks_server.hits == 1

    rotated = SigningKey()
    jwks_server.jwks = {"keys": [key.jwk, rotated.jwk]}
    await asyncio.sleep(0.25)
    assert (await verifier.verify(rotated.token())).sub == "user-1"
    assert jwks_server.hits == 2
    # Both keys are now cached: no further requests.
    await verifier.verify(key.token())
    await verifier.verify(rotated.token())
    assert jwks_server.hits == 2


async def test_refetches_for_unknown_kids_are_throttled(
    key: SigningKey, jwks_server: JwksServer, http_client: httpx.AsyncClient
) -> None:
    verifier = _jwks_verifier(JwksKeys(jwks_server.url, http_client, min_refresh_interval=0.5))
    await verifier.verify(key.token())
    await asyncio.sleep(0.55)

    # A flood of tokens with made-up kids (concurrently and one after another) costs one request.
    strangers = [SigningKey().token() for _ in range(30)]
    results = await asyncio.gather(*(verifier.verify(t) for t in strangers), return_exceptions=True)
    assert all(isinstance(r, TokenError) for r in results)
    for token in strangers:
        with pytest.raises(TokenError, match="unknown key"):
            await verifier.verify(token)
    assert jwks_server.hits == 2

    await asyncio.sleep(0.55)
    with pytest.raises(TokenError):
        await verifier.verify(strangers[0])
    assert jwks_server.hits == 3
    # The known key never waits for, nor causes, a refetch.
    await verifier.verify(key.token())
    assert jwks_server.hits == 3


async def test_failed_fetch_keeps_the_cached_keys(
    key: SigningKey, jwks_server: JwksServer, http_client: httpx.AsyncClient
) -> None:
    keys = JwksKeys(jwks_server.url, http_client, max_age=0.1, min_refresh_interval=0.0)
    verifier = _jwks_verifier(keys)
    await verifier.verify(key.token())
    jwks_server.status = 503
    await asyncio.sleep(0.15)
    # Stale cache, refetch fails: the auth service being down must not log everyone out.
    assert (await verifier.verify(key.token())).sub == "user-1"
    assert jwks_server.hits == 2
    await keys.check()


async def test_stale_cache_is_refetched_and_drops_removed_keys(
    key: SigningKey, jwks_server: JwksServer, http_client: httpx.AsyncClient
) -> None:
    verifier = _jwks_verifier(
        JwksKeys(jwks_server.url, http_client, max_age=0.1, min_refresh_interval=0.0)
    )
    await verifier.verify(key.token())
    replacement = SigningKey()
    jwks_server.jwks = {"keys": [replacement.jwk]}
    await asyncio.sleep(0.15)
    with pytest.raises(TokenError, match="unknown key"):
        await verifier.verify(key.token())
    assert (await verifier.verify(replacement.token())).sub == "user-1"


async def test_keys_of_other_algorithms_in_the_jwks_are_ignored(
    key: SigningKey, jwks_server: JwksServer, http_client: httpx.AsyncClient
) -> None:
    hmac_jwk = {"kty": "oct", "kid": "hmac", "alg": "HS256", "k": b64url(b"shared-secret")}
    jwks_server.jwks = {"keys": [hmac_jwk, key.jwk]}
    keys = JwksKeys(jwks_server.url, http_client)
    assert await keys.key_for("hmac") is None
    assert await keys.key_for(key.kid) is not None


async def test_check_fails_while_no_jwks_was_ever_fetched(
    http_client: httpx.AsyncClient,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    keys = JwksKeys(nobody, http_client, min_refresh_interval=0.0)
    with pytest.raises(TokenError, match="JWKS unreachable"):
        await keys.check()
