"""The one keys module: key algorithms, key generation, the signature hash, serial numbers,
the back-date of a new certificate, and private keys encrypted at rest.

Everything that makes a key or a certificate uses it: ``x509.create`` (development
certificates), the private CA (``ca.authority``, ``ca.hierarchy``, ``ca.keys``) and the demo
sandbox (``cli.demo_forge``).

Encrypted keys are standard ``ENCRYPTED PRIVATE KEY`` PEM (PKCS#8, RFC 5958) with PBES2
(RFC 8018) using the scrypt KDF (RFC 7914) and AES-256-CBC, which OpenSSL reads
(``openssl pkey -in``) and ``openssl pkcs8 -topk8 -scrypt`` writes. cryptography reads it but
cannot write it, so the few TLVs are assembled with ``x509.der``. Reading takes any scheme
cryptography knows, so keys written before (PBKDF2) still load.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Iterable
from enum import StrEnum

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from certwarden.errors import UsageError
from certwarden.x509 import der

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PRIVATE_KEY_TYPES = (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)

# Back-date notBefore by one minute: enough for the clock skew of NTP-synced machines (the
# issuer's and the relying party's), small enough that a lifetime stays the lifetime asked
# for (CA/B BR count validity from notBefore; a 47-day ceiling leaves no room for more). The
# CA has always used one minute (its ledger and tests pin it); development certificates used
# five, for no reason the CA does not share, and now use the same minute.
BACKDATE = dt.timedelta(minutes=1)

# scrypt cost: N=2^14, r=8 (16 MiB, ~50 ms) is what ``openssl pkcs8 -scrypt`` writes; OpenSSL's
# default scrypt memory cap (32 MiB) refuses the next step up unless -maxmem is given.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_PBES2, _SCRYPT, _AES256_CBC = "1.2.840.113549.1.5.13", "1.3.6.1.4.1.11591.4.11", \
    "2.16.840.1.101.3.4.1.42"


class KeyAlgorithm(StrEnum):
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ED25519 = "ed25519"

    @classmethod
    def parse(cls, text: str, *, among: Iterable[KeyAlgorithm] | None = None) -> KeyAlgorithm:
        """The algorithm ``text`` names (``P-256``, ``rsa4096`` …), one of ``among``."""
        allowed = tuple(cls) if among is None else tuple(among)
        norm = text.strip().lower().replace("_", "-").replace("p-", "p")
        aliases = {"p256": "ec-p256", "p384": "ec-p384", "ecdsa-p256": "ec-p256",
                   "ecdsa-p384": "ec-p384", "rsa2048": "rsa-2048", "rsa3072": "rsa-3072",
                   "rsa4096": "rsa-4096"}
        try:
            found = cls(aliases.get(norm, norm))
        except ValueError:
            found = None
        if found is None or found not in allowed:
            raise UsageError(f"unknown key algorithm {text!r}; one of: "
                             f"{', '.join(a.value for a in allowed)}")
        return found


# A CA key signs for years: RSA-2048 (112-bit security) is for leaves only.
CA_KEY_ALGORITHMS = tuple(a for a in KeyAlgorithm if a is not KeyAlgorithm.RSA_2048)


def generate_private_key(algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> PrivateKey:
    if algorithm is KeyAlgorithm.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm is KeyAlgorithm.EC_P384:
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm is KeyAlgorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    bits = int(algorithm.value.split("-")[1])
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def hash_for(key: object) -> hashes.SHA256 | hashes.SHA384 | None:
    """The signature hash a key of this kind signs with (None: EdDSA hashes internally)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey
                  | ed448.Ed448PrivateKey | ed448.Ed448PublicKey):
        return None
    return hashes.SHA256()


def random_serial() -> int:
    """A certificate serial: 127 bits from the CSPRNG, never zero.

    RFC 5280 4.1.2.2: a positive INTEGER of at most 20 octets; CA/B BR 7.1: at least 64 bits
    of CSPRNG output. 127 bits keep the DER INTEGER positive within 16 octets (no sign
    octet, so every serial has the same width: 32 hex digits as the CA stores it), with no
    bit forced (the old ``| 1`` of the development certificates gave away one).
    """
    while True:
        value = secrets.randbits(127)
        if value:
            return value


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


def pkcs12_encryption(password: bytes) -> serialization.KeySerializationEncryption:
    """How a private key inside a PKCS#12 keystore is protected: the container's own scheme
    (PBES2 with AES-256 and SHA-256 in cryptography's "best available"), which Java's keytool
    and OpenSSL read; not a key file at rest (that is ``encrypt_pkcs8``)."""
    return serialization.BestAvailableEncryption(password)


def key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM; scrypt-encrypted (``encrypt_pkcs8``) when a passphrase is given."""
    if passphrase:
        return encrypt_pkcs8(key, passphrase)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
