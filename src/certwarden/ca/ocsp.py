"""OCSP responder (RFC 6960, profile of RFC 5019): good / revoked / unknown, nonce echo,
responses pre-signed and cached until the revocation data changes or half their validity
has passed. Responses are signed by the issuing CA itself (no delegated responder cert).

``Responder.respond(request_der)`` returns an ``OcspAnswer`` (bytes + the times the HTTP layer
needs for ``Cache-Control``); it never raises on bad input: a malformed request gets the
``malformedRequest`` response, an issuer we do not serve gets ``unauthorized``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from certwarden.ca.clock import utcnow
from certwarden.ca.ledger import Ledger
from certwarden.ca.model import CertStatus, Issuer, serial_hex
from certwarden.ca.signer import Signer, sign_ocsp
from certwarden.x509.keys import BACKDATE

RESPONSE_VALIDITY = dt.timedelta(hours=24)
# An "unknown" may turn "good" with the next issuance, which does not bump the revision:
# keep those answers short-lived instead.
UNKNOWN_VALIDITY = dt.timedelta(minutes=1)
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512}


@dataclass(frozen=True, slots=True, kw_only=True)
class OcspAnswer:
    der: bytes
    status: CertStatus | None          # None: not a successful response
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    cacheable: bool = False            # False for nonce-bearing and error responses


@dataclass(frozen=True, slots=True, kw_only=True)
class _Served:
    issuer: Issuer
    cert: x509.Certificate
    signer: Signer


MAX_NONCE = 32  # RFC 8954 §2.1

_MALFORMED = ocsp.OCSPResponseBuilder.build_unsuccessful(
    ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(serialization.Encoding.DER)
_UNAUTHORIZED = ocsp.OCSPResponseBuilder.build_unsuccessful(
    ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
_INTERNAL = ocsp.OCSPResponseBuilder.build_unsuccessful(
    ocsp.OCSPResponseStatus.INTERNAL_ERROR).public_bytes(serialization.Encoding.DER)


class Responder:
    """Answers for the issuers given; thread-safe."""

    def __init__(self, ledger: Ledger, served: Iterable[tuple[Issuer, Signer]], *,
                 clock: Callable[[], dt.datetime] = utcnow, poll_seconds: float = 1.0) -> None:
        self._ledger = ledger
        self._clock = clock
        self._poll = poll_seconds
        self._by_hash: dict[tuple[str, bytes, bytes], _Served] = {}
        for issuer, signer in served:
            cert = issuer.certificate
            entry = _Served(issuer=issuer, cert=cert, signer=signer)
            name_der = cert.subject.public_bytes()
            spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
            key_bits = _spki_key_bits(spki)
            for alg in _HASHES:
                self._by_hash[(alg, hashlib.new(alg, name_der).digest(),
                               hashlib.new(alg, key_bits).digest())] = entry
        self._cache: dict[tuple[str, bytes, int], OcspAnswer] = {}
        self._lock = threading.Lock()
        self._revision = ledger.revision()
        self._checked = time.monotonic()

    def respond(self, request_der: bytes) -> OcspAnswer:
        try:
            req = ocsp.load_der_ocsp_request(request_der)
            alg = req.hash_algorithm.name
            key = (alg, req.issuer_name_hash, req.issuer_key_hash)
            serial = req.serial_number
        except Exception:  # any parse failure is the client's: RFC 6960 malformedRequest
            return OcspAnswer(der=_MALFORMED, status=None)
        served = self._by_hash.get(key)
        if served is None or alg not in _HASHES:
            return OcspAnswer(der=_UNAUTHORIZED, status=None)
        nonce = None
        try:
            nonce = req.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            pass
        except Exception:  # extensions decode lazily: a malformed one is the client's fault
            return OcspAnswer(der=_MALFORMED, status=None)
        if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE:
            # RFC 8954 §2.1: a nonce of 0 or more than 32 octets MUST be refused; it would
            # otherwise buy an uncached signature over attacker-chosen bytes.
            return OcspAnswer(der=_MALFORMED, status=None)
        self._maybe_invalidate()
        now = self._clock()
        if nonce is None:
            cache_key = (served.issuer.name, key[2] + key[1] + alg.encode(), serial)
            hit = self._cache.get(cache_key)
            if hit is not None and hit.this_update and hit.next_update and \
                    now < hit.this_update + (hit.next_update - hit.this_update) / 2:
                return hit
        try:
            answer = self._sign(served, alg, serial, nonce, now)
        except Exception:  # a token failure must not take the responder down
            return OcspAnswer(der=_INTERNAL, status=None)
        if nonce is None:
            with self._lock:
                self._cache[cache_key] = answer
        return answer

    def warm(self, *, algorithms: tuple[str, ...] = ("sha1", "sha256"),
             limit: int = 100_000) -> int:
        """Pre-sign answers for every recorded certificate (what ``serve`` does at start)."""
        n = 0
        now = self._clock()
        seen = {id(v): v for v in self._by_hash.values()}
        for served in seen.values():
            for issued, _rev in self._ledger.list_issued(issuer=served.issuer.name, limit=limit):
                if issued.not_after < now:
                    continue
                for alg in algorithms:
                    req = (ocsp.OCSPRequestBuilder()
                           .add_certificate_by_hash(*self._hashes(served, alg),
                                                    int(issued.serial, 16), _HASHES[alg]())
                           .build().public_bytes(serialization.Encoding.DER))
                    self.respond(req)
                    n += 1
        return n

    def _hashes(self, served: _Served, alg: str) -> tuple[bytes, bytes]:
        for (a, nh, kh), v in self._by_hash.items():
            if v is served and a == alg:
                return nh, kh
        raise KeyError(alg)

    def _maybe_invalidate(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._poll:
            return
        self._checked = now
        rev = self._ledger.revision()
        if rev != self._revision:
            with self._lock:
                self._revision = rev
                self._cache.clear()

    def _sign(self, served: _Served, alg: str, serial: int, nonce: bytes | None,
              now: dt.datetime) -> OcspAnswer:
        key = serial_hex(serial)
        issued = self._ledger.issued(key)
        revocation = self._ledger.revocation(key) if issued is not None else None
        this_update = (now - BACKDATE).replace(microsecond=0)
        if issued is None or issued.issuer != served.issuer.name:
            status, validity = CertStatus.UNKNOWN, UNKNOWN_VALIDITY
        elif revocation is not None:
            status, validity = CertStatus.REVOKED, RESPONSE_VALIDITY
        else:
            status, validity = CertStatus.GOOD, RESPONSE_VALIDITY
        next_update = this_update + validity
        cert_status = {CertStatus.GOOD: ocsp.OCSPCertStatus.GOOD,
                       CertStatus.REVOKED: ocsp.OCSPCertStatus.REVOKED,
                       CertStatus.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN}[status]
        nh, kh = self._hashes(served, alg)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=nh, issuer_key_hash=kh, serial_number=serial,
            algorithm=_HASHES[alg](), cert_status=cert_status, this_update=this_update,
            next_update=next_update,
            revocation_time=revocation.revoked_at.replace(microsecond=0) if revocation else None,
            revocation_reason=revocation.reason.flag if revocation else None)
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        der = sign_ocsp(builder, served.signer, served.cert)
        return OcspAnswer(der=der, status=status, this_update=this_update,
                          next_update=next_update, cacheable=nonce is None)


def _spki_key_bits(spki_der: bytes) -> bytes:
    """The subjectPublicKey BIT STRING contents (without the unused-bits octet)."""
    from certwarden.x509 import der

    _alg, bits = der.children(spki_der)
    return der.content(bits)[1:]
