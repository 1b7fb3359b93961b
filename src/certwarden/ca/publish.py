"""What ``serve`` publishes: CRLs per issuer (re-signed when revocations change) and OCSP.

A root whose key is not available here (offline) is still published: its latest stored CRL is
served as is, and OCSP for it answers ``unauthorized``. An issuing CA whose key cannot be
opened is an error: ``serve`` refuses to start rather than answer ``unauthorized``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from certwarden.ca.clock import utcnow
from certwarden.ca.crl import CRL_VALIDITY, build_crl
from certwarden.ca.errors import CaError, NotFound
from certwarden.ca.keyref import open_signer
from certwarden.ca.ledger import Ledger
from certwarden.ca.model import CrlRecord, Issuer, IssuerRole
from certwarden.ca.ocsp import Responder
from certwarden.ca.signer import Signer


class Publisher:
    def __init__(self, ledger: Ledger, signers: dict[str, Signer], *,
                 clock: Callable[[], dt.datetime] = utcnow, poll_seconds: float = 1.0) -> None:
        self.ledger = ledger
        self._signers = signers
        self._clock = clock
        self._issuers = {i.name: i for i in ledger.issuers()}
        self.responder = Responder(ledger, [(self._issuers[n], s) for n, s in signers.items()
                                            if n in self._issuers],
                                   clock=clock, poll_seconds=poll_seconds)
        self._crl_revision: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, ledger: Ledger, *, passphrase: Callable[[], bytes] | None = None,
             pin: str | None = None, poll_seconds: float = 1.0) -> Publisher:
        signers: dict[str, Signer] = {}
        for issuer in ledger.issuers():
            try:
                signers[issuer.name] = open_signer(issuer.key_ref, passphrase=passphrase, pin=pin)
            except CaError:
                if issuer.role is IssuerRole.ROOT:
                    continue  # an offline root: publish its stored CRL
                raise  # an issuing CA we cannot sign for must not answer "unauthorized" quietly
        return cls(ledger, signers, poll_seconds=poll_seconds)

    @property
    def issuers(self) -> dict[str, Issuer]:
        return dict(self._issuers)

    def crl(self, issuer: str) -> CrlRecord:
        """The current CRL of ``issuer``: re-signed if revocations changed or it is half-stale."""
        if issuer not in self._issuers:
            raise NotFound(f"no issuer named {issuer!r}")
        now = self._clock()
        latest = self.ledger.latest_crl(issuer)
        signer = self._signers.get(issuer)
        if signer is None:
            if latest is None:
                raise NotFound(f"no CRL published for {issuer!r} (its key is offline)")
            return latest
        revision = self.ledger.revision()
        with self._lock:
            if latest is not None and issuer not in self._crl_revision and \
                    _entries(latest) == len(self.ledger.revocations(issuer)):
                self._crl_revision[issuer] = revision  # a new process: the stored CRL is current
            fresh = (latest is not None and self._crl_revision.get(issuer) == revision
                     and now < latest.this_update + (latest.next_update - latest.this_update) / 2)
            if fresh:
                assert latest is not None
                return latest
            rec = build_crl(self.ledger, self._issuers[issuer], signer, requested_by="serve",
                            validity=CRL_VALIDITY, now=now)
            self._crl_revision[issuer] = revision
            return rec


def _entries(crl: CrlRecord) -> int:
    from cryptography import x509

    return len(x509.load_der_x509_crl(crl.der))
