"""Building, signing and recording a CRL (RFC 5280 5): the next CRL number, every revocation
of the issuer, reason codes only when they say something."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certwarden.ca.errors import CaError, DuplicateSerial
from certwarden.ca.ledger import Ledger
from certwarden.ca.model import AuditAction, AuditEvent, CrlRecord, Issuer, RevocationReason
from certwarden.ca.signer import Signer, sign_crl
from certwarden.x509.keys import BACKDATE

CRL_VALIDITY = dt.timedelta(days=7)


def build_crl(ledger: Ledger, issuer: Issuer, signer: Signer, *, requested_by: str,
              validity: dt.timedelta, now: dt.datetime) -> CrlRecord:
    cert = issuer.certificate
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    for _attempt in range(3):
        number = ledger.last_crl_number(issuer.name) + 1
        builder = (x509.CertificateRevocationListBuilder()
                   .issuer_name(cert.subject).last_update(now - BACKDATE)
                   .next_update(now + validity)
                   .add_extension(x509.CRLNumber(number), False)
                   .add_extension(
                       x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       False))
        for rev in ledger.revocations(issuer.name):
            entry = (x509.RevokedCertificateBuilder().serial_number(int(rev.serial, 16))
                     .revocation_date(rev.revoked_at))
            if rev.reason is not RevocationReason.UNSPECIFIED:
                # RFC 5280 5.3.1: reasonCode unspecified SHOULD be absent.
                entry = entry.add_extension(x509.CRLReason(rev.reason.flag), False)
            builder = builder.add_revoked_certificate(entry.build())
        crl = sign_crl(builder, signer)
        rec = CrlRecord(issuer=issuer.name, number=number, this_update=now - BACKDATE,
                        next_update=now + validity, der=crl.public_bytes(Encoding.DER))
        try:
            ledger.record_crl(rec, event=AuditEvent(at=now, actor=requested_by,
                                                    action=AuditAction.CRL, issuer=issuer.name,
                                                    detail=f"number {number}"))
            return rec
        except DuplicateSerial:
            continue  # another process published the same number first; take the next one
    raise CaError(f"could not publish a CRL for {issuer.name}: CRL numbers kept colliding")
