"""Key algorithms, key generation and scrypt-encrypted PKCS#8 key files (mode 0600).

The file format is standard ``ENCRYPTED PRIVATE KEY`` (RFC 5958) with PBES2 (RFC 8018) using
the scrypt KDF (RFC 7914) and AES-256-CBC, which OpenSSL reads (``openssl pkey -in``) and
``openssl pkcs8 -topk8 -scrypt`` writes. cryptography reads it but cannot write it, so the
few TLVs are assembled here.
"""

from __future__ import annotations

import base64
import os
import secrets
from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from certwarden.ca.errors import SignerError
from certwarden.errors import PasswordError, UsageError
from certwarden.x509 import der

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

# scrypt cost: N=2^14, r=8 (16 MiB, ~50 ms) is what ``openssl pkcs8 -scrypt`` writes; OpenSSL's
# default scrypt memory cap (32 MiB) refuses the next step up unless -maxmem is given.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_PBES2, _SCRYPT, _AES256_CBC = "1.2.840.113549.1.5.13", "1.3.6.1.4.1.11591.4.11", \
    "2.16.840.1.101.3.4.1.42"


class KeyAlgorithm(StrEnum):
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ED25519 = "ed25519"

    @classmethod
    def parse(cls, text: str) -> KeyAlgorithm:
        norm = text.strip().lower().replace("_", "-").replace("p-", "p")
        aliases = {"p256": "ec-p256", "p384": "ec-p384", "ecdsa-p256": "ec-p256",
                   "ecdsa-p384": "ec-p384", "rsa3072": "rsa-3072", "rsa4096": "rsa-4096"}
        try:
            return cls(aliases.get(norm, norm))
        except ValueError:
            raise UsageError(f"unknown key algorithm {text!r}; one of: "
                             f"{', '.join(a.value for a in cls)}") from None


def generate_private_key(alg: KeyAlgorithm) -> PrivateKey:
    if alg is KeyAlgorithm.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if alg is KeyAlgorithm.EC_P384:
        return ec.generate_private_key(ec.SECP384R1())
    if alg is KeyAlgorithm.RSA_3072:
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if alg is KeyAlgorithm.RSA_4096:
        return rsa.generate_private_key(public_exponent=65537, key_size=4096)
    return ed25519.Ed25519PrivateKey.generate()


def hash_for(key: object) -> hashes.HashAlgorithm | None:
    """The signature hash a CA key of this kind uses (None: Ed25519 hashes internally)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return None
    return hashes.SHA256()


def encrypt_pkcs8(key: PrivateKey, passphrase: bytes) -> bytes:
    """PEM ``ENCRYPTED PRIVATE KEY`` with scrypt + AES-256-CBC."""
    if not passphrase:
        raise UsageError("an empty passphrase cannot protect a CA key")
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    salt, iv = secrets.token_bytes(16), secrets.token_bytes(16)
    kek = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    enc = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    blob = enc.update(padded) + enc.finalize()
    kdf = der.seq(der.oid(_SCRYPT), der.seq(der.octets(salt), der.integer(SCRYPT_N),
                                            der.integer(SCRYPT_R), der.integer(SCRYPT_P),
                                            der.integer(32)))
    alg = der.seq(der.oid(_PBES2), der.seq(kdf, der.seq(der.oid(_AES256_CBC), der.octets(iv))))
    body = base64.encodebytes(der.seq(alg, der.octets(blob))).replace(b"\n", b"")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return (b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + b"\n".join(lines)
            + b"\n-----END ENCRYPTED PRIVATE KEY-----\n")


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
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
                      | ed25519.Ed25519PrivateKey):
        raise SignerError(f"{path}: unsupported CA key type {type(key).__name__}")
    return key
