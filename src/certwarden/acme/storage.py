"""What the ACME core needs from a database, as a Protocol (step-ca's ``acme.DB`` shape).

``certwarden.store.acme_repo.AcmeRepo`` implements it over SQLAlchemy. Resources travel as
``acme.model`` records both ways. Every method that changes state is one transaction;
``*_if`` methods are compare-and-set and return whether they changed anything, which is how
concurrent requests stay consistent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from certwarden.acme.model import (
    Account,
    Authorization,
    Challenge,
    EabKey,
    IssuedCertificate,
    Order,
)


class AcmeStore(Protocol):
    # accounts
    def add_account(self, account: Account) -> tuple[Account, bool]:
        """Insert; if the key is already registered return that account and False."""
        ...

    def account(self, account_id: str) -> Account | None: ...

    def account_by_thumbprint(self, thumbprint: str) -> Account | None: ...

    def update_account(self, account_id: str, **fields: Any) -> Account | None:
        """Set columns (``contact``, ``tos_agreed``, ``status``) and return the account."""
        ...

    def change_account_key_if(self, account_id: str, *, old_thumbprint: str,
                              jwk: Mapping[str, Any], thumbprint: str) -> bool: ...

    # orders, authorizations (with their challenges)
    def add_order(self, order: Order, authzs: Sequence[Authorization]) -> None: ...

    def order(self, order_id: str) -> Order | None: ...

    def order_ids(self, account_id: str, *, offset: int, limit: int) -> list[str]: ...

    def set_order_status_if(self, order_id: str, *, expect: Sequence[str], status: str,
                            error: Mapping[str, Any] | None = None) -> bool: ...

    def authz(self, authz_id: str) -> Authorization | None: ...

    def authzs_of_order(self, order_id: str) -> list[Authorization]: ...

    def set_authz_status_if(self, authz_id: str, *, expect: Sequence[str], status: str) -> bool: ...

    def challenge(self, challenge_id: str) -> Challenge | None: ...

    def set_challenge_if(self, challenge_id: str, *, expect: Sequence[str], status: str,
                         error: Mapping[str, Any] | None = None,
                         validated: dt.datetime | None = None) -> bool: ...

    # certificates
    def finish_order(self, order_id: str, cert: IssuedCertificate) -> None:
        """Store the certificate and move the order processing -> valid in one transaction."""
        ...

    def certificate(self, cert_id: str) -> IssuedCertificate | None: ...

    def certificate_by(self, *, sha256: str | None = None, ari_id: str | None = None
                       ) -> IssuedCertificate | None: ...

    def mark_replaced_if(self, cert_id: str, *, order_id: str) -> bool: ...

    def revoke_certificate_if(self, cert_id: str, *, reason: int, at: dt.datetime) -> bool: ...

    # nonces shared by several server processes
    def secret(self, name: str, make: bytes) -> bytes: ...

    def claim_nonce_if(self, nonce: str, *, expires: dt.datetime) -> bool: ...

    def purge_nonces(self, *, before: dt.datetime) -> int: ...

    # external account binding
    def add_eab_key(self, kid: str, hmac_key: bytes) -> None: ...

    def eab_key(self, kid: str) -> EabKey | None: ...

    def bind_eab_if(self, kid: str, account_id: str) -> bool: ...
