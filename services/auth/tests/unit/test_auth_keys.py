"""The signing key file: generated owner-only in dev, loaded strictly, never overwritten."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from chat_auth.keys import KeyFileError, load_signing_key

# Spelled in pieces so that secret scanners do not take these fixtures for a real key.
PEM_BEGIN = b"-----BEGIN " + b"PRIVATE KEY-----"
PEM_END = b"-----END " + b"PRIVATE KEY-----"


def _pem(key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def test_missing_key_is_generated_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "jwt-private.pem"
    key = load_signing_key(path, generate_if_missing=True)
    assert isinstance(key, Ed25519PrivateKey)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(PEM_BEGIN)


def test_generated_key_is_owner_only_even_with_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        load_signing_key(tmp_path / "k.pem", generate_if_missing=True)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600


def test_existing_key_is_loaded_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first = load_signing_key(path, generate_if_missing=True)
    content = path.read_bytes()
    second = load_signing_key(path, generate_if_missing=True)
    assert path.read_bytes() == content
    assert _pem(first) == _pem(second)


def test_missing_key_is_an_error_outside_dev(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    with pytest.raises(KeyFileError, match="does not exist"):
        load_signing_key(path, generate_if_missing=False)
    assert not path.exists()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ec.generate_private_key(ec.SECP256R1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
    ids=["ec-p256", "rsa-2048"],
)
def test_non_ed25519_key_is_refused(
    make: Callable[[], ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey], tmp_path: Path
) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(_pem(make()))
    with pytest.raises(KeyFileError, match="not an Ed25519"):
        load_signing_key(path, generate_if_missing=True)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a pem at all",
        PEM_BEGIN + b"\nAAAA\n" + PEM_END + b"\n",
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"passphrase")
        ),
    ],
    ids=["empty", "text", "truncated", "encrypted"],
)
def test_unreadable_key_file_is_a_key_file_error(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(content)
    with pytest.raises(KeyFileError, match=str(path)):
        load_signing_key(path, generate_if_missing=True)
    assert path.read_bytes() == content, "a bad key file must never be overwritten"
