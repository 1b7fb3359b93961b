"""The issuing authority: the one HTTP-free API that the CLI, the web layer and ACME call.

    authority = Authority.open(ledger, passphrase=lambda: b"...")
    chain = authority.issue(csr_pem, profile="tls-server", requested_by="acme:acct/17")
    authority.revoke(chain.serial, RevocationReason.KEY_COMPROMISE, requested_by="alice")

Nothing is returned before the ledger has committed it (``Ledger.record_issued``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from certwarden.ca import profiles as profiles_mod
from certwarden.ca.clock import Clock, utcnow
from certwarden.ca.crl import CRL_VALIDITY, build_crl
from certwarden.ca.csr import LeafKey, check_key, load_csr, requested_names
from certwarden.ca.errors import CaError, DuplicateSerial, NotFound, RequestRefused
from certwarden.ca.keyref import open_signer
from certwarden.ca.ledger import Ledger
from certwarden.ca.model import (
    AuditAction,
    AuditEvent,
    CrlRecord,
    Issued,
    IssuedChain,
    Issuer,
    IssuerRole,
    Revocation,
    RevocationReason,
    ari_id,
    parse_serial,
    serial_hex,
)
from certwarden.ca.names import Name, NameKind, parse_name
from certwarden.ca.policy import CaConfig, config_key
from certwarden.ca.signer import Signer, sign_certificate
from certwarden.x509.keys import BACKDATE, random_serial

CsrInput = bytes | x509.CertificateSigningRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueRequest:
    """One issuance: a CSR (verified) or a bare public key the caller generated itself."""

    csr: CsrInput | None = None
    public_key: LeafKey | None = None
    profile: str = "tls-server"
    names: tuple[str, ...] | None = None   # None: the CSR's names
    requested_by: str = "unknown"
    lifetime: dt.timedelta | None = None


class Authority:
    """Issue, revoke and publish CRLs as one issuing CA (normally the intermediate)."""

    def __init__(self, *, ledger: Ledger, issuer: Issuer, signer: Signer,
                 chain_der: tuple[bytes, ...], config: CaConfig, clock: Clock = utcnow) -> None:
        self.ledger = ledger
        self.issuer = issuer
        self.signer = signer
        self.chain_der = chain_der          # issuer first, root not included
        self.config = config
        self._clock = clock
        self._cert = issuer.certificate
        self._not_after = self._cert.not_valid_after_utc  # a property that re-parses: cache it
        self._issuer_name = self._cert.subject
        ski = self._cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        self._aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
        self._aia = x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP,
            x509.UniformResourceIdentifier(config.ocsp_url()))])
        self._cdp = x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(config.crl_url(issuer.name))],
            relative_name=None, reasons=None, crl_issuer=None)])

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, ledger: Ledger, *, issuer: str | None = None,
             passphrase: Callable[[], bytes] | None = None, pin: str | None = None,
             clock: Clock = utcnow) -> Authority:
        """The authority of ``issuer`` (default: the newest intermediate) with its signer."""
        found = pick_issuer(ledger, issuer)
        signer = open_signer(found.key_ref, passphrase=passphrase, pin=pin)
        chain = [found.certificate_der]
        parent = found.parent
        while parent:
            p = ledger.issuer(parent)
            if p is None or p.role is IssuerRole.ROOT:
                break
            chain.append(p.certificate_der)
            parent = p.parent
        cfg = CaConfig.from_mapping(ledger.get_setting(config_key(found.name)) or {})
        return cls(ledger=ledger, issuer=found, signer=signer, chain_der=tuple(chain),
                   config=cfg, clock=clock)

    # -- issuing -------------------------------------------------------------------------
    def issue(self, csr: CsrInput | None = None, *, profile: str = "tls-server",
              names: Sequence[str] | None = None, requested_by: str = "unknown",
              lifetime: dt.timedelta | None = None, public_key: LeafKey | None = None,
              ) -> IssuedChain:
        """Sign one leaf and return it only after it is durably recorded."""
        req = IssueRequest(csr=csr, public_key=public_key, profile=profile,
                           names=tuple(names) if names is not None else None,
                           requested_by=requested_by, lifetime=lifetime)
        (result,) = self.issue_many([req])
        if isinstance(result, CaError):
            raise result
        return result

    def issue_many(self, requests: Sequence[IssueRequest]) -> list[IssuedChain | CaError]:
        """Sign a batch, commit it in one transaction, then return (a group commit).

        A refused request ends as its ``CaError`` in the result list; it never sinks the batch.
        """
        now = self._clock()
        results: list[IssuedChain | CaError] = []
        pending: list[tuple[int, IssueRequest, x509.Certificate, Issued]] = []
        refusals: list[AuditEvent] = []
        for i, req in enumerate(requests):
            try:
                cert, rec = self._sign_one(req, now)
            except CaError as exc:
                results.append(exc)
                refusals.append(AuditEvent(at=now, actor=req.requested_by,
                                           action=AuditAction.REFUSE, issuer=self.issuer.name,
                                           detail=str(exc)))
                continue
            results.append(exc_placeholder)
            pending.append((i, req, cert, rec))
        for attempt in range(3):
            try:
                events = [AuditEvent(at=rec.issued_at, actor=rec.requested_by,
                                     action=AuditAction.ISSUE, issuer=self.issuer.name,
                                     serial=rec.serial,
                                     detail=f"{rec.profile} {','.join(rec.names)}")
                          for _, _, _, rec in pending]
                self.ledger.record_issued([p[3] for p in pending], events=[*events, *refusals])
                break
            except DuplicateSerial:
                # Astronomically unlikely with 127 random bits; re-sign with fresh serials.
                if attempt == 2:
                    raise
                pending = [(i, req, *self._sign_one(req, now)) for i, req, _, _ in pending]
        for i, _, _, rec in pending:
            results[i] = IssuedChain(record=rec, leaf_der=rec.certificate_der,
                                     chain_der=self.chain_der,
                                     ari_id=ari_id(self._aki.key_identifier or b"",
                                                   parse_serial(rec.serial)))
        return results

    def _sign_one(self, req: IssueRequest, now: dt.datetime) -> tuple[x509.Certificate, Issued]:
        prof = profiles_mod.resolve(req.profile, self.config.profiles)
        if req.csr is not None:
            csr = load_csr(req.csr)
            key = check_key(csr.public_key())
            names = (tuple(parse_name(n) for n in req.names) if req.names is not None
                     else requested_names(csr))
        elif req.public_key is not None:
            key = check_key(req.public_key)
            names = tuple(parse_name(n) for n in req.names or ())
        else:
            raise RequestRefused("neither a CSR nor a public key was given", rule="input")
        names = tuple(dict.fromkeys(names))
        self._check_names(prof, names)
        lifetime = req.lifetime or prof.lifetime
        if lifetime > prof.max_lifetime or lifetime <= dt.timedelta(0):
            raise RequestRefused(f"lifetime {lifetime} is outside (0, {prof.max_lifetime}] of "
                                 f"profile {prof.name}", rule="lifetime")
        not_before = now - BACKDATE
        not_after = min(now + lifetime, self._not_after)
        serial = random_serial()
        first_dns = next((n.value for n in names if n.kind is NameKind.DNS
                          and len(n.value) <= 64), None)
        subject = (x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first_dns)])
                   if first_dns and not prof.spiffe else x509.Name([]))
        ku_encipher = isinstance(key, rsa.RSAPublicKey) and "serverAuth" in \
            prof.extended_key_usage
        builder = (x509.CertificateBuilder()
                   .subject_name(subject).issuer_name(self._issuer_name)
                   .public_key(key).serial_number(serial)
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=True, content_commitment=False,
                       key_encipherment=ku_encipher, data_encipherment=False,
                       key_agreement=False, key_cert_sign=False, crl_sign=False,
                       encipher_only=False, decipher_only=False), True)
                   .add_extension(x509.ExtendedKeyUsage(prof.eku_oids), False)
                   .add_extension(x509.SubjectAlternativeName(
                       [n.general_name() for n in names]), critical=len(subject) == 0)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), False)
                   .add_extension(self._aki, False)
                   .add_extension(self._aia, False)
                   .add_extension(self._cdp, False))
        cert = sign_certificate(builder, self.signer)
        leaf_der = cert.public_bytes(Encoding.DER)
        rec = Issued(serial=serial_hex(serial), issuer=self.issuer.name,
                     subject=f"CN={first_dns}" if len(subject) else "",
                     names=tuple(n.value for n in names),
                     profile=prof.name, not_before=not_before.replace(microsecond=0),
                     not_after=not_after.replace(microsecond=0), certificate_der=leaf_der,
                     sha256=hashlib.sha256(leaf_der).hexdigest(),
                     requested_by=req.requested_by, issued_at=now)
        return cert, rec

    def _check_names(self, prof: profiles_mod.Profile, names: tuple[Name, ...]) -> None:
        if not names and prof.require_names:
            raise RequestRefused("no subject alternative name requested", rule="names")
        for n in names:
            if n.kind not in prof.name_kinds:
                raise RequestRefused(f"profile {prof.name} does not allow {n.kind} names "
                                     f"({n.value})", rule="profile-names")
        if prof.spiffe:
            uris = [n for n in names if n.kind is NameKind.URI]
            if len(uris) != 1 or not uris[0].value.startswith("spiffe://"):
                raise RequestRefused("an X.509-SVID carries exactly one URI SAN, a spiffe:// ID",
                                     rule="spiffe-svid")
        else:
            for n in names:
                if n.kind is NameKind.URI and n.value.startswith("spiffe://"):
                    raise RequestRefused("SPIFFE IDs are issued only by the spiffe profile",
                                         rule="profile-names")
        self.config.policy.check(names)

    # -- revoking ------------------------------------------------------------------------
    def revoke(self, serial: str | int, reason: RevocationReason | str = "unspecified", *,
               requested_by: str = "unknown") -> Revocation:
        """Revoke a certificate this issuer signed (idempotent: the first reason stays)."""
        return revoke_serial(self.ledger, serial, reason, requested_by=requested_by,
                             issuer=self.issuer.name, now=self._clock())

    # -- CRLs ----------------------------------------------------------------------------
    def crl(self, *, requested_by: str = "unknown",
            validity: dt.timedelta = CRL_VALIDITY) -> CrlRecord:
        """A fresh CRL with the next CRL number, recorded before it is returned."""
        return build_crl(self.ledger, self.issuer, self.signer, requested_by=requested_by,
                         validity=validity, now=self._clock())


# Placeholder in the result list until the batch commits (never returned to callers).
exc_placeholder = CaError("issuance not committed")


def revoke_serial(ledger: Ledger, serial: str | int, reason: RevocationReason | str, *,
                  requested_by: str, issuer: str | None = None,
                  now: dt.datetime | None = None) -> Revocation:
    """Record a revocation. Needs no key: CRLs and OCSP answers are signed when published."""
    value = serial if isinstance(serial, int) else parse_serial(serial)
    key = serial_hex(value)
    rec = ledger.issued(key)
    if rec is None or (issuer is not None and rec.issuer != issuer):
        raise NotFound(f"serial {key} was not issued by {issuer or 'this CA'}")
    why = reason if isinstance(reason, RevocationReason) else RevocationReason.parse(reason)
    at = now or utcnow()
    rev = Revocation(serial=key, issuer=rec.issuer, reason=why, revoked_at=at,
                     revoked_by=requested_by)
    return ledger.revoke(rev, event=AuditEvent(at=at, actor=requested_by,
                                               action=AuditAction.REVOKE, issuer=rec.issuer,
                                               serial=key, detail=why.value))


def pick_issuer(ledger: Ledger, name: str | None) -> Issuer:
    if name:
        found = ledger.issuer(name)
        if found is None:
            raise NotFound(f"no CA named {name!r}; run 'certwarden ca init' or 'ca list'")
        return found
    inter = [i for i in ledger.issuers() if i.role is IssuerRole.INTERMEDIATE]
    if not inter:
        raise NotFound("no CA here yet; run 'certwarden ca init --name ...' first")
    return inter[-1]
