"""Revocation evidence read into records: CRLs, OCSP responses, and the index rules look into.

A CRL or OCSP response is evidence only once its issuer has been checked: the signature, and
for a CRL the RFC 5280 conditions a relying party must refuse it on (an issuer without
cRLSign, a critical extension not understood, no CRL number, past nextUpdate). Those checks
live here, once; ``verify_chain`` and the ``revoked`` rule both use them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp

from certwarden.errors import ParseError
from certwarden.x509.der import spki_key_bits
from certwarden.x509.record import Certificate

# CRL extensions (RFC 5280 §5.2) and entry extensions (§5.3) this reader understands. A
# critical one outside these makes the CRL unusable (§5.2: "MUST reject"). Delta CRLs and
# indirect CRLs (certificateIssuer entries) are not processed, so they are not "understood".
_CRL_EXTENSIONS = frozenset({
    "2.5.29.20",  # cRLNumber
    "2.5.29.35",  # authorityKeyIdentifier
    "2.5.29.18",  # issuerAltName
    "2.5.29.28",  # issuingDistributionPoint (a full CRL for the issuer's certificates)
    "2.5.29.46",  # freshestCRL
    "1.3.6.1.5.5.7.1.1",  # authorityInfoAccess
})
_ENTRY_EXTENSIONS = frozenset({"2.5.29.21", "2.5.29.24"})  # reasonCode, invalidityDate
_CRL_NUMBER = "2.5.29.20"
OCSP_SKEW = dt.timedelta(minutes=5)  # clock difference tolerated on an OCSP thisUpdate


class RevocationSource(StrEnum):
    LEDGER = "ledger"  # certwarden's own CA: what it revoked
    CRL = "crl"
    OCSP = "ocsp"
    STAPLED = "ocsp-stapled"  # an OCSP response the server sent in the handshake


@dataclass(frozen=True, slots=True, kw_only=True)
class Revoked:
    """One certificate its issuer says is revoked, and where that was read."""

    serial: int
    revoked_at: dt.datetime
    reason: str | None
    source: RevocationSource
    origin: str  # the URL, file or "certwarden CA ledger"


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, kw_only=True, eq=False)
class Crl:
    """One CRL as read; ``problem_with`` says whether it can judge an issuer's certificates."""

    der: bytes = field(repr=False)
    issuer: str  # RFC 4514, comparable with ``Certificate.issuer``
    this_update: dt.datetime
    next_update: dt.datetime | None
    number: int | None
    authority_key_id: str | None
    entries: Mapping[int, Revoked] = field(repr=False)
    not_understood: tuple[str, ...]  # critical extensions (or entry extensions) not processed
    origin: str
    _x: Any = field(repr=False, default=None)

    @classmethod
    def from_bytes(cls, data: bytes, *, origin: str) -> Crl:
        """A CRL in DER or PEM. Raises ``ParseError`` naming ``origin``."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                x = (cx509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----")
                     else cx509.load_der_x509_crl(data))
                return cls._build(x, origin)
            except (ValueError, TypeError) as exc:
                reason = " ".join(str(exc).split())[:160] or type(exc).__name__
                raise ParseError(origin, f"not a CRL ({reason})") from None

    @classmethod
    def _build(cls, x: cx509.CertificateRevocationList, origin: str) -> Crl:
        not_understood = [e.oid.dotted_string for e in x.extensions
                          if e.critical and e.oid.dotted_string not in _CRL_EXTENSIONS]
        number = aki = None
        for ext in x.extensions:
            if isinstance(ext.value, cx509.CRLNumber):
                number = ext.value.crl_number
            elif isinstance(ext.value, cx509.AuthorityKeyIdentifier) and \
                    ext.value.key_identifier:
                aki = ext.value.key_identifier.hex()
        entries: dict[int, Revoked] = {}
        for rc in x:
            reason = None
            for ext in rc.extensions:
                oid = ext.oid.dotted_string
                if ext.critical and oid not in _ENTRY_EXTENSIONS:
                    not_understood.append(f"entry {oid}")
                if isinstance(ext.value, cx509.CRLReason):
                    reason = ext.value.reason.value
            entries[rc.serial_number] = Revoked(
                serial=rc.serial_number, revoked_at=rc.revocation_date_utc, reason=reason,
                source=RevocationSource.CRL, origin=origin)
        return cls(der=x.public_bytes(serialization.Encoding.DER),
                   issuer=x.issuer.rfc4514_string(), this_update=x.last_update_utc,
                   next_update=x.next_update_utc, number=number, authority_key_id=aki,
                   entries=entries, not_understood=tuple(dict.fromkeys(not_understood)),
                   origin=origin, _x=x)

    def covers(self, cert: Certificate) -> bool:
        """Is this the CRL of ``cert``'s issuer (by name, and key id when both carry one)?"""
        if cert.issuer != self.issuer:
            return False
        aki = cert.authority_key_id
        return aki is None or self.authority_key_id is None or aki == self.authority_key_id

    def problem_with(self, issuer: Certificate, at: dt.datetime) -> str | None:
        """Why this CRL cannot judge certificates of ``issuer`` (None: it can)."""
        if issuer.subject != self.issuer:
            return f"the CRL is issued by {self.issuer}, not {issuer.subject}"
        if not _crl_signed_by(self._x, issuer):
            return f"its signature does not verify with the key of {issuer.subject}"
        if issuer.key_usage and "crl_sign" not in issuer.key_usage:
            return (f"its issuer {issuer.subject} lacks cRLSign in keyUsage "
                    "(RFC 5280 §4.2.1.3, §6.3.3 (f))")
        if self.not_understood:
            return ("critical extension(s) not understood: " + ", ".join(self.not_understood)
                    + " (RFC 5280 §5.2)")
        if self.number is None:
            return "it carries no CRL number (RFC 5280 §5.2.3: conforming CRLs MUST)"
        if self.next_update is not None and self.next_update < at:
            return f"it is stale: nextUpdate {self.next_update:%Y-%m-%d %H:%M}Z has passed"
        return None


def _crl_signed_by(crl: cx509.CertificateRevocationList, issuer: Certificate) -> bool:
    try:
        pub = cx509.load_der_x509_certificate(issuer.der).public_key()
        return bool(crl.is_signature_valid(pub))  # type: ignore[arg-type]
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False


def crl_verdicts(path: Sequence[Certificate], crls: Iterable[Crl], at: dt.datetime,
                 ) -> tuple[list[Revoked], list[str]]:
    """For each child/issuer pair on ``path``: revocations found, and CRLs that could not be
    used (with the reason). A CRL for an issuer that is not on the path is ignored."""
    revoked: list[Revoked] = []
    unusable: list[str] = []
    crls = tuple(crls)
    for child, parent in itertools.pairwise(path):
        for crl in crls:
            if not crl.covers(child):
                continue
            why = crl.problem_with(parent, at)
            if why is not None:
                unusable.append(f"CRL {crl.origin} of {parent.subject}: {why}")
            elif child.serial in crl.entries:
                revoked.append(crl.entries[child.serial])
    return revoked, unusable


# ---- OCSP ----------------------------------------------------------------------------

class OcspStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedOcspResponse:
    """A verified OCSP single response about one certificate."""

    status: OcspStatus
    serial: int
    this_update: dt.datetime
    next_update: dt.datetime | None
    revoked: Revoked | None
    origin: str


def ocsp_request(cert: Certificate, issuer: Certificate) -> bytes:
    """A DER OCSPRequest (SHA-1 CertID, no nonce: answers can be cached, RFC 5019)."""
    req = ocsp.OCSPRequestBuilder().add_certificate(
        cx509.load_der_x509_certificate(cert.der), cx509.load_der_x509_certificate(issuer.der),
        hashes.SHA1())  # noqa: S303 - the CertID hash RFC 5019 responders must support
    return req.build().public_bytes(serialization.Encoding.DER)


def read_ocsp_response(der: bytes, *, cert: Certificate, issuer: Certificate,
                       at: dt.datetime, origin: str,
                       source: RevocationSource = RevocationSource.OCSP) -> CheckedOcspResponse:
    """Check an OCSP response about ``cert`` (issued by ``issuer``) and read its verdict.

    Raises ``ParseError`` when it is not one a relying party may use: not successful, not
    signed by the issuer or by a responder the issuer delegated (id-kp-OCSPSigning), about
    another certificate, or outside its validity window (RFC 6960 §3.2, §4.2.2.2).
    """
    try:
        resp = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        raise ParseError(origin, f"not an OCSP response ({' '.join(str(exc).split())[:120]})"
                         ) from None
    if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ParseError(origin, f"OCSP response status {resp.response_status.name.lower()}")
    issuer_x = cx509.load_der_x509_certificate(issuer.der)
    signer = _ocsp_signer(resp, issuer_x)
    if signer is None:
        raise ParseError(origin, "OCSP response not signed by the issuer or a responder it "
                                 "delegated (RFC 6960 §4.2.2.2)")
    single = next((r for r in resp.responses if r.serial_number == cert.serial
                   and r.issuer_key_hash == _key_hash(issuer_x, r.hash_algorithm)), None)
    if single is None:
        raise ParseError(origin, "the OCSP response is about another certificate")
    this_update = _aware(single.this_update_utc)
    next_update = single.next_update_utc
    if this_update > at + OCSP_SKEW:
        raise ParseError(origin, f"OCSP thisUpdate {this_update:%Y-%m-%d %H:%M}Z is in the "
                                 "future")
    if next_update is not None and next_update < at:
        raise ParseError(origin, f"OCSP response expired at {next_update:%Y-%m-%d %H:%M}Z")
    status = {ocsp.OCSPCertStatus.GOOD: OcspStatus.GOOD,
              ocsp.OCSPCertStatus.REVOKED: OcspStatus.REVOKED}.get(single.certificate_status,
                                                                   OcspStatus.UNKNOWN)
    revoked = None
    if status is OcspStatus.REVOKED:
        when = single.revocation_time_utc or this_update
        reason = single.revocation_reason.value if single.revocation_reason else None
        revoked = Revoked(serial=cert.serial, revoked_at=when, reason=reason, source=source,
                          origin=origin)
    return CheckedOcspResponse(status=status, serial=cert.serial, this_update=this_update,
                      next_update=next_update, revoked=revoked, origin=origin)


def _key_hash(issuer: cx509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.new(algorithm.name, spki_key_bits(spki)).digest()


def _ocsp_signer(resp: ocsp.OCSPResponse, issuer: cx509.Certificate,
                 ) -> cx509.Certificate | None:
    """The certificate whose key signed ``resp``, if the issuer or a delegate of it."""
    candidates: list[cx509.Certificate] = [issuer]
    for c in resp.certificates:
        try:
            eku = c.extensions.get_extension_for_class(cx509.ExtendedKeyUsage).value
        except cx509.ExtensionNotFound:
            continue
        if cx509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in eku and c.issuer == issuer.subject \
                and _signed(c.signature, c.tbs_certificate_bytes, c.signature_hash_algorithm,
                            issuer.public_key(), c.signature_algorithm_parameters):
            candidates.append(c)
    for c in candidates:
        if _signed(resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm,
                   c.public_key(), None):
            return c
    return None


def _signed(sig: bytes, data: bytes, h: hashes.HashAlgorithm | None, pub: Any,
            params: Any) -> bool:
    try:
        if isinstance(pub, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            pub.verify(sig, data)
        elif isinstance(pub, rsa.RSAPublicKey) and h is not None:
            pub.verify(sig, data, params if isinstance(params, padding.PSS)
                       else padding.PKCS1v15(), h)
        elif isinstance(pub, ec.EllipticCurvePublicKey) and h is not None:
            pub.verify(sig, data, ec.ECDSA(h))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


# ---- the index the ``revoked`` rule reads ---------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationIndex:
    """What is known to be revoked, gathered at the edge (ledger, CRLs, OCSP) for one run.

    ``listed`` holds revocations already checked against their issuer (our own ledger, and
    verified OCSP answers), keyed by (issuer key id or issuer name, serial). ``crls`` are
    checked here, against the issuer the caller found, before an entry counts.
    """

    listed: Mapping[tuple[str, int], Revoked] = field(default_factory=dict)
    crls: tuple[Crl, ...] = ()
    issuers: Mapping[str, tuple[Certificate, ...]] = field(default_factory=dict)  # by subject

    def __bool__(self) -> bool:
        return bool(self.listed or self.crls)

    def lookup(self, cert: Certificate, issuer: Certificate | None,
               at: dt.datetime) -> Revoked | None:
        listed = self.listed
        if listed:
            for key in (cert.authority_key_id, cert.issuer):
                if key is not None:
                    hit = listed.get((key, cert.serial))
                    if hit is not None:
                        return hit
        for crl in self.crls:
            entry = crl.entries.get(cert.serial)
            if entry is None or not crl.covers(cert):
                continue
            parents = (issuer,) if issuer is not None else self.issuers.get(cert.issuer, ())
            if any(crl.problem_with(p, at) is None for p in parents):
                return entry
        return None


def index_key(issuer_key_id: str | None, issuer_name: str) -> str:
    """The first half of a ``RevocationIndex.listed`` key for an issuer."""
    return issuer_key_id or issuer_name
