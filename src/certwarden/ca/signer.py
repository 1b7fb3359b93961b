"""Signers: one interface over a key the process holds (a file) and one it never sees (PKCS#11).

A ``Signer`` only signs bytes. ``sign_certificate`` / ``sign_crl`` / ``sign_ocsp`` turn a
cryptography builder into a signed object with any signer: a file key signs natively; for an
external key the builder first signs with a throwaway key of the same kind (which fixes the
TBS bytes, including the signature AlgorithmIdentifier), then the TBS is signed by the
external key and the signature BIT STRING is replaced (``resign``).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from certwarden.x509 import der
from certwarden.x509.keys import PrivateKey, hash_for

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@runtime_checkable
class Signer(Protocol):
    """A CA key. ``sign`` returns the signature exactly as X.509 carries it (DER ECDSA)."""

    @property
    def public_key(self) -> PublicKey: ...

    @property
    def key_ref(self) -> str:
        """Where the key lives (``file:/path`` or a ``pkcs11:`` URI without PIN)."""
        ...

    @property
    def private_key(self) -> PrivateKey | None:
        """The key object when this process holds it (fast path), else None."""
        ...

    def sign(self, data: bytes) -> bytes: ...


class FileSigner:
    """A key loaded from an encrypted PKCS#8 file (see ``keys.load_key_file``)."""

    __slots__ = ("_key", "_ref")

    def __init__(self, key: PrivateKey, *, ref: str) -> None:
        self._key = key
        self._ref = ref

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key()

    @property
    def key_ref(self) -> str:
        return self._ref

    @property
    def private_key(self) -> PrivateKey:
        return self._key

    def sign(self, data: bytes) -> bytes:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            algo = hash_for(key)
            assert algo is not None
            return key.sign(data, ec.ECDSA(algo))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return key.sign(data)


def _hash(key: PrivateKey) -> Any:
    """The hash argument cryptography's ``sign`` wants (its stubs list concrete SHA-2 types)."""
    return hash_for(key)


_dummies: dict[str, PrivateKey] = {}
_dummy_lock = threading.Lock()


def _dummy_for(public: PublicKey) -> PrivateKey:
    """A throwaway key whose signature AlgorithmIdentifier equals the real key's."""
    if isinstance(public, ec.EllipticCurvePublicKey):
        kind = f"ec-{public.curve.name}"
    elif isinstance(public, rsa.RSAPublicKey):
        kind = "rsa"
    else:
        kind = "ed25519"
    with _dummy_lock:
        if kind not in _dummies:
            if isinstance(public, ec.EllipticCurvePublicKey):
                _dummies[kind] = ec.generate_private_key(public.curve)
            elif isinstance(public, rsa.RSAPublicKey):
                _dummies[kind] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            else:
                _dummies[kind] = ed25519.Ed25519PrivateKey.generate()
        return _dummies[kind]


def resign(signed: bytes, signer: Signer) -> bytes:
    """Replace the signature of ``SEQUENCE { tbs, algorithm, BIT STRING, ... }``."""
    parts = der.children(signed)
    if len(parts) < 3 or parts[2][0] != der.BIT_STRING:
        raise ValueError("not a signed structure")
    parts[2] = der.bit_string(signer.sign(parts[0]))
    return der.seq(*parts)


def sign_certificate(builder: x509.CertificateBuilder, signer: Signer) -> x509.Certificate:
    key = signer.private_key
    if key is not None:
        return builder.sign(key, _hash(key))
    dummy = _dummy_for(signer.public_key)
    draft = builder.sign(dummy, _hash(dummy))
    return x509.load_der_x509_certificate(resign(draft.public_bytes(Encoding.DER), signer))


def sign_crl(builder: x509.CertificateRevocationListBuilder,
             signer: Signer) -> x509.CertificateRevocationList:
    key = signer.private_key
    if key is not None:
        return builder.sign(key, _hash(key))
    dummy = _dummy_for(signer.public_key)
    draft = builder.sign(dummy, _hash(dummy))
    return x509.load_der_x509_crl(resign(draft.public_bytes(Encoding.DER), signer))


def key_hash(public: PublicKey) -> bytes:
    """SHA-1 of the subjectPublicKey bits: OCSP's KeyHash and issuerKeyHash (RFC 6960 4.2.1)."""
    import hashlib

    spki = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    _alg, bits = der.children(spki)
    return hashlib.sha1(der.content(bits)[1:], usedforsecurity=False).digest()


_dummy_certs: dict[str, x509.Certificate] = {}


def _dummy_cert(dummy: PrivateKey) -> x509.Certificate:
    """A throwaway self-signed certificate for the throwaway key (cryptography insists the
    responder certificate matches the signing key; its hash is swapped for the real one)."""
    import datetime as dt

    ident = key_hash(dummy.public_key()).hex()
    with _dummy_lock:
        if ident not in _dummy_certs:
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "draft")])
            now = dt.datetime.now(dt.UTC)
            _dummy_certs[ident] = (x509.CertificateBuilder().subject_name(name)
                                   .issuer_name(name).public_key(dummy.public_key())
                                   .serial_number(1).not_valid_before(now)
                                   .not_valid_after(now + dt.timedelta(days=1))
                                   .sign(dummy, _hash(dummy)))
        return _dummy_certs[ident]


def sign_ocsp(builder: ocsp.OCSPResponseBuilder, signer: Signer,
              responder: x509.Certificate) -> bytes:
    """A successful OCSPResponse (DER) by ``responder`` (ResponderID byKey), signed by
    ``signer`` — whose key must be the responder certificate's key."""
    key = signer.private_key
    if key is not None:
        built = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
        return built.sign(key, _hash(key)).public_bytes(Encoding.DER)
    dummy = _dummy_for(signer.public_key)
    draft_builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, _dummy_cert(dummy))
    draft = draft_builder.sign(dummy, _hash(dummy)).public_bytes(Encoding.DER)
    # OCSPResponse ::= SEQUENCE { responseStatus, [0] EXPLICIT ResponseBytes }
    # ResponseBytes ::= SEQUENCE { responseType OID, response OCTET STRING (BasicOCSPResponse) }
    status, tagged = der.children(draft)
    (response_bytes,) = der.children(tagged)
    rtype, basic_octets = der.children(response_bytes)
    basic = der.children(der.content(basic_octets))
    # ResponseData ::= SEQUENCE { [0] version DEFAULT v1 (omitted), responderID, ... };
    # byKey is [2] EXPLICIT KeyHash: swap the throwaway key's hash for the real one.
    tbs = der.children(basic[0])
    if tbs[0][0] != 0xA2:
        raise ValueError("unexpected ResponseData layout")
    tbs[0] = der.encode(0xA2, der.octets(key_hash(signer.public_key)))
    basic[0] = der.seq(*tbs)
    signed = resign(der.seq(*basic), signer)
    new_rb = der.seq(rtype, der.octets(signed))
    return der.seq(status, der.encode(0xA0, new_rb))
