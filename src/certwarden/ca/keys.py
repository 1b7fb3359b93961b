"""CA key files: scrypt-encrypted PKCS#8 (``x509.keys.encrypt_pkcs8``), mode 0600 from
creation on, never overwritten; loading maps every failure to the CA's errors.

Algorithms, generation, the signature hash and the encryption itself live in ``x509.keys``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from certwarden.ca.errors import SignerError
from certwarden.errors import PasswordError, UsageError
from certwarden.x509.keys import PRIVATE_KEY_TYPES, PrivateKey, encrypt_pkcs8


def write_key_file(path: Path, key: PrivateKey, passphrase: bytes) -> None:
    """Write the encrypted key, 0600 from creation on; never overwrite an existing key."""
    pem = encrypt_pkcs8(key, passphrase)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path}: a key file already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or 'cannot write'}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())


def load_key_file(path: Path, passphrase: bytes) -> PrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SignerError(f"{path}: CA key file is missing (an offline root key?)") from None
    except OSError as exc:
        raise SignerError(f"{path}: {exc.strerror or 'cannot read'}") from None
    try:
        key = serialization.load_pem_private_key(data, passphrase)
    except (ValueError, TypeError):
        raise PasswordError(str(path), "wrong passphrase or damaged key file") from None
    if not isinstance(key, PRIVATE_KEY_TYPES):
        raise SignerError(f"{path}: unsupported CA key type {type(key).__name__}")
    return key
