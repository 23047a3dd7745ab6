"""The signing key: read from a PEM file; generated on first run in dev and test only."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

log = logging.getLogger(__name__)


class KeyFileError(RuntimeError):
    pass


def load_signing_key(path: Path, *, generate_if_missing: bool) -> Ed25519PrivateKey:
    if not path.exists():
        if not generate_if_missing:
            raise KeyFileError(f"JWT private key file {path} does not exist")
        _generate(path)
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # Not PEM, encrypted, or an algorithm this build lacks: say which file, not a traceback.
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 private key")
    return key


def _generate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    # Create with owner-only permissions, and never overwrite a key another process just wrote.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    log.info("generated a development signing key", extra={"path": str(path)})
