"""certwarden.ca — the private CA: signers (file key, PKCS#11), profiles, issue, revoke,
CRL and OCSP. HTTP-free and SQL-free; persistence is behind ``Ledger``.

The API other packages (ACME, lifecycle, web) use::

    from certwarden.ca import Authority, RevocationReason
    authority = Authority.open(ledger, passphrase=lambda: b"...")
    chain = authority.issue(csr_der, profile="tls-server", names=["a.example"],
                            requested_by="acme:account/1")
    chain.pem()               # leaf first, then the intermediate
    authority.revoke(chain.serial, RevocationReason.KEY_COMPROMISE, requested_by="acme")
"""

from certwarden.ca.authority import Authority, IssueRequest
from certwarden.ca.errors import CaError, DuplicateSerial, NotFound, RequestRefused, SignerError
from certwarden.ca.ledger import Ledger, MemoryLedger
from certwarden.ca.model import (
    AuditAction,
    AuditEvent,
    CertStatus,
    CrlRecord,
    Issued,
    IssuedChain,
    Issuer,
    IssuerRole,
    Revocation,
    RevocationReason,
)

__all__ = [
    "AuditAction", "AuditEvent", "Authority", "CaError", "CertStatus", "CrlRecord",
    "DuplicateSerial", "IssueRequest", "Issued", "IssuedChain", "Issuer", "IssuerRole", "Ledger",
    "MemoryLedger", "NotFound", "RequestRefused", "Revocation", "RevocationReason", "SignerError",
]
