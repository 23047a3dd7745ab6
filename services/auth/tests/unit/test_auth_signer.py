"""Access tokens as signed by the auth service, checked against the contract's claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chat_auth.tokens.access import AccessTokenSigner
from chat_platform.jwt import StaticKeys, TokenError, TokenVerifier, public_jwk


@pytest.fixture
def signer() -> AccessTokenSigner:
    return AccessTokenSigner(
        Ed25519PrivateKey.generate(), issuer="chat-auth", audience="chat", ttl=timedelta(minutes=15)
    )


def test_token_carries_the_contract_claims(signer: AccessTokenSigner) -> None:
    issued = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    token = signer.sign("user-1", now=issued)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == signer.jwk["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"sub", "iss", "aud", "iat", "exp", "jti"}
    assert claims["sub"] == "user-1"
    assert claims["iss"] == "chat-auth"
    assert claims["aud"] == "chat"
    assert claims["iat"] == int(issued.timestamp())
    assert claims["exp"] == int(issued.timestamp()) + 15 * 60


def test_every_token_has_its_own_jti(signer: AccessTokenSigner) -> None:
    issued = datetime.now(UTC)
    jtis = {
        jwt.decode(signer.sign("user-1", now=issued), options={"verify_signature": False})["jti"]
        for _ in range(20)
    }
    assert len(jtis) == 20


def test_jwks_holds_only_the_public_key(signer: AccessTokenSigner) -> None:
    assert signer.jwks == {"keys": [public_jwk(signer.key.public_key())]}
    assert "d" not in signer.jwks["keys"][0]


async def test_tokens_verify_with_the_published_jwks(signer: AccessTokenSigner) -> None:
    verifier = TokenVerifier(StaticKeys(signer.jwks), issuer="chat-auth", audience="chat")
    claims = await verifier.verify(signer.sign("user-1"))
    assert claims.sub == "user-1"
    assert claims.exp - claims.iat == 15 * 60


async def test_token_past_its_ttl_is_refused(signer: AccessTokenSigner) -> None:
    verifier = TokenVerifier(StaticKeys(signer.jwks), issuer="chat-auth", audience="chat")
    old = signer.sign("user-1", now=datetime.now(UTC) - timedelta(minutes=16))
    with pytest.raises(TokenError, match="expired"):
        await verifier.verify(old)


async def test_tokens_of_another_auth_key_are_refused(signer: AccessTokenSigner) -> None:
    other = AccessTokenSigner(
        Ed25519PrivateKey.generate(), issuer="chat-auth", audience="chat", ttl=timedelta(minutes=5)
    )
    verifier = TokenVerifier(StaticKeys(signer.jwks), issuer="chat-auth", audience="chat")
    with pytest.raises(TokenError):
        await verifier.verify(other.sign("user-1"))
