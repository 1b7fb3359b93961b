"""Gathering what is revoked before an assessment: our CA's ledger, then (opted in) the CRLs
and OCSP responders the certificates name.

The ``revoked`` rule only reads the ``RevocationIndex`` built here; no rule touches the network.
Every fetch that fails or is refused becomes a note (one line each), never a lost run.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509 as cx509

from certwarden.assess import Policy
from certwarden.ca.ledger import Ledger
from certwarden.discovery.revocation_fetch import RevocationFetcher
from certwarden.errors import CertwardenError
from certwarden.records import Sighting
from certwarden.x509 import Certificate, Kind
from certwarden.x509.revocation import (
    Crl,
    OcspStatus,
    RevocationIndex,
    RevocationSource,
    Revoked,
    index_key,
    read_ocsp_response,
)
from certwarden.x509.verify import issued_by

LEDGER_ORIGIN = "certwarden CA ledger"
# A run asks each URL once (CRLs are shared by every certificate of an issuer); OCSP is per
# certificate, so a bound keeps one report from becoming a crawl of the estate's responders.
MAX_OCSP_QUERIES = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Gathered:
    index: RevocationIndex
    notes: tuple[str, ...] = ()  # fetches refused or failed, CRLs not usable


def fetcher_for(policy: Policy, *, cache_dir: Path | None = None) -> RevocationFetcher | None:
    """The policy's fetcher, or None when the policy does not opt in."""
    rules = policy.revocation
    if not rules.fetch:
        return None
    return RevocationFetcher(allow=rules.allow, timeout=float(rules.timeout_seconds),
                             max_bytes=rules.max_bytes,
                             cache_dir=cache_dir)


def ledger_revocations(ledger: Ledger) -> dict[tuple[str, int], Revoked]:
    """What our own CA revoked, keyed as ``RevocationIndex.listed`` is."""
    out: dict[tuple[str, int], Revoked] = {}
    for issuer in ledger.issuers():
        cert = issuer.certificate
        try:
            ski = cert.extensions.get_extension_for_class(
                cx509.SubjectKeyIdentifier).value.digest.hex()
        except cx509.ExtensionNotFound:
            ski = None
        name = cert.subject.rfc4514_string()
        for rev in ledger.revocations(issuer.name):
            entry = Revoked(serial=int(rev.serial, 16), revoked_at=rev.revoked_at,
                            reason=rev.reason.value, source=RevocationSource.LEDGER,
                            origin=f"{LEDGER_ORIGIN} ({issuer.name})")
            out[(index_key(ski, name), entry.serial)] = entry
            out[(name, entry.serial)] = entry
    return out


def gather(sightings: Sequence[Sighting], certificates: Iterable[Certificate] = (), *,
           ledger: Ledger | None, fetcher: RevocationFetcher | None,
           now: dt.datetime | None = None) -> Gathered:
    now = now or dt.datetime.now(dt.UTC)
    listed = ledger_revocations(ledger) if ledger is not None else {}
    known: dict[str, Certificate] = {}
    parent_of: dict[str, Certificate] = {}  # leaf sha256 -> the issuer presented with it
    for s in sightings:
        known.setdefault(s.certificate.sha256, s.certificate)
        for c in s.chain:
            known.setdefault(c.sha256, c)
        if s.chain:
            parent_of.setdefault(s.certificate.sha256, s.chain[0])
    for c in certificates:
        known.setdefault(c.sha256, c)
    issuers: dict[str, list[Certificate]] = {}
    for c in known.values():
        if c.is_ca:
            issuers.setdefault(c.subject, []).append(c)
    index_issuers = {k: tuple(v) for k, v in issuers.items()}
    notes: list[str] = []
    for s in sightings:  # stapled in a handshake: read already, no fetch needed
        staple = s.extra.get("ocsp_staple")
        if not staple:
            continue
        issuer = _issuer_of(s.certificate, s.chain[0] if s.chain else None, index_issuers)
        if issuer is None:
            notes.append(f"OCSP stapled at {s.location.uri}: its issuer is unknown, not used")
            continue
        try:
            answer = read_ocsp_response(base64.b64decode(staple), cert=s.certificate,
                                        issuer=issuer, at=now,
                                        origin=f"stapled at {s.location.uri}",
                                        source=RevocationSource.STAPLED)
        except (CertwardenError, ValueError) as exc:
            notes.append(f"OCSP stapled at {s.location.uri} not used: {exc}")
            continue
        if answer.revoked is not None:
            c = s.certificate
            listed[(index_key(c.authority_key_id, c.issuer), c.serial)] = answer.revoked
    crls: dict[str, Crl] = {}
    if fetcher is not None:
        queries = 0
        for cert in known.values():
            issuer = _issuer_of(cert, parent_of.get(cert.sha256), index_issuers)
            for url in cert.crl_urls:
                if url in crls or fetcher.refusal(url) is not None:
                    continue
                try:
                    crls[url] = fetcher.crl(url)
                except CertwardenError as exc:
                    notes.append(f"CRL {exc}")
                    continue
                if issuer is not None:
                    why = crls[url].problem_with(issuer, now)
                    if why is not None:
                        notes.append(f"CRL {url} not used: {why}")
            if issuer is None or not cert.ocsp_urls or queries >= MAX_OCSP_QUERIES:
                continue
            ocsp_url = next((u for u in cert.ocsp_urls if fetcher.refusal(u) is None), None)
            if ocsp_url is None:
                continue
            queries += 1
            try:
                answer = fetcher.ocsp(ocsp_url, cert, issuer)
            except CertwardenError as exc:
                notes.append(f"OCSP {exc}")
                continue
            if answer.status is OcspStatus.REVOKED and answer.revoked is not None:
                listed[(index_key(cert.authority_key_id, cert.issuer), cert.serial)] = \
                    answer.revoked
        refused = sorted({u for c in known.values() for u in (*c.crl_urls, *c.ocsp_urls)
                          if fetcher.refusal(u) is not None})
        if refused:
            notes.append(f"{len(refused)} revocation URL(s) not on the allow list, not "
                         f"fetched (first: {refused[0]})")
    return Gathered(index=RevocationIndex(listed=listed, crls=tuple(crls.values()),
                                          issuers=index_issuers),
                    notes=tuple(notes))


def _issuer_of(cert: Certificate, presented: Certificate | None,
               issuers: dict[str, tuple[Certificate, ...]]) -> Certificate | None:
    """The certificate whose key signed ``cert``: the one presented with it, else one known."""
    if cert.kind is Kind.SELF_SIGNED:
        return None  # a root's status is its trust store's business, not a CRL's
    for candidate in ((presented,) if presented is not None else ()) + issuers.get(
            cert.issuer, ()):
        if candidate is not None and candidate.subject == cert.issuer and \
                issued_by(cert, candidate):
            return candidate
    return None
