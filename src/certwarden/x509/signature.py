"""Certificate signatures: does a key verify one, and what is the algorithm called.

Verification here accepts what cryptography's own issuer check refuses (SHA-1, MD5): the
roots and appliances of that age are exactly the ones certwarden has to recognise.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from certwarden.x509.extensions import oid_name

_HASH_NAMES = {"md5": "md5", "sha1": "sha1", "sha224": "sha224", "sha256": "sha256",
               "sha384": "sha384", "sha512": "sha512"}

# Signature algorithms whose hash cryptography will not name (it refuses MD2/MD4).
_LEGACY_SIG_HASH = {"md2WithRSAEncryption": "md2", "md4WithRSAEncryption": "md4",
                    "1.2.840.113549.1.1.2": "md2", "1.2.840.113549.1.1.3": "md4"}

_SIG_NAMES: dict[str, str] = {}  # OID -> name; a handful of entries, bounded by the OID registry


def signature_name(cert: cx509.Certificate) -> str:
    """e.g. "sha256WithRSAEncryption", "ecdsa-with-SHA256"; the dotted OID when unnamed."""
    sig_oid = cert.signature_algorithm_oid
    name = _SIG_NAMES.get(sig_oid.dotted_string)
    if name is None:
        name = oid_name(sig_oid)
        _SIG_NAMES[sig_oid.dotted_string] = name
    return name


def signature_hash(cert: cx509.Certificate, algorithm: str) -> str | None:
    """"sha256", "sha1", "md5" ...; None for Ed25519/ML-DSA or an unsupported hash.

    ``algorithm`` is ``signature_name(cert)``: the name a legacy hash is known by.
    """
    try:
        h = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return _LEGACY_SIG_HASH.get(algorithm)
    return None if h is None else _HASH_NAMES.get(h.name, h.name)


def signature_verifies(cert: cx509.Certificate, pub: Any, *, issuer: cx509.Certificate,
                       tbs: bytes | None = None) -> bool:
    """True when ``pub`` (the key of ``issuer``) verifies ``cert``'s signature.

    cryptography's ``verify_directly_issued_by`` refuses SHA-1 and MD5; roots and appliances of
    that age are exactly the ones we must recognise, so the classic algorithms are verified
    with the key directly. Newer ones (ML-DSA ...) go through cryptography's own check.
    """
    sig = cert.signature
    if tbs is None:
        tbs = cert.tbs_certificate_bytes
    try:
        if isinstance(pub, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            pub.verify(sig, tbs)
            return True
        if not isinstance(pub, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | dsa.DSAPublicKey):
            cert.verify_directly_issued_by(issuer)
            return True
        h = cert.signature_hash_algorithm
        if h is None:
            return False
        if isinstance(pub, rsa.RSAPublicKey):
            params = cert.signature_algorithm_parameters
            pad = params if isinstance(params, padding.PSS) else padding.PKCS1v15()
            pub.verify(sig, tbs, pad, h)
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(sig, tbs, ec.ECDSA(h))
        else:
            pub.verify(sig, tbs, h)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        # A key/signature-algorithm mismatch (an RSA key under an ECDSA OID) is "not verified".
        return False
    return True
