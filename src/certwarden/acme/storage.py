"""What the ACME core needs from a database, as a Protocol (step-ca's ``acme.DB`` shape).

``certwarden.store.acme_repo.AcmeRepo`` implements it over SQLAlchemy. Rows travel as plain
mappings whose keys are the column names; ``model`` turns them into records. Every method
that changes state is one transaction; ``*_if`` methods are compare-and-set and return
whether they changed anything, which is how concurrent requests stay consistent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

Row = dict[str, Any]


class AcmeStore(Protocol):
    # accounts
    def add_account(self, row: Mapping[str, Any]) -> tuple[Row, bool]:
        """Insert; if the key is already registered return that row and False."""
        ...

    def account(self, account_id: str) -> Row | None: ...

    def account_by_thumbprint(self, thumbprint: str) -> Row | None: ...

    def update_account(self, account_id: str, **fields: Any) -> Row | None: ...

    def change_account_key_if(self, account_id: str, *, old_thumbprint: str,
                              jwk: Mapping[str, Any], thumbprint: str) -> bool: ...

    # orders, authorizations, challenges
    def add_order(self, order: Mapping[str, Any], authzs: Sequence[Mapping[str, Any]],
                  challenges: Sequence[Mapping[str, Any]]) -> None: ...

    def order(self, order_id: str) -> Row | None: ...

    def order_ids(self, account_id: str, *, offset: int, limit: int) -> list[str]: ...

    def set_order_status_if(self, order_id: str, *, expect: Sequence[str], status: str,
                            error: Mapping[str, Any] | None = None) -> bool: ...

    def authz(self, authz_id: str) -> Row | None: ...

    def authzs_of_order(self, order_id: str) -> list[Row]: ...

    def set_authz_status_if(self, authz_id: str, *, expect: Sequence[str], status: str) -> bool: ...

    def challenge(self, challenge_id: str) -> Row | None: ...

    def set_challenge_if(self, challenge_id: str, *, expect: Sequence[str], status: str,
                         error: Mapping[str, Any] | None = None,
                         validated: dt.datetime | None = None) -> bool: ...

    # certificates
    def finish_order(self, order_id: str, cert: Mapping[str, Any]) -> None:
        """Store the certificate and move the order processing -> valid in one transaction."""
        ...

    def certificate(self, cert_id: str) -> Row | None: ...

    def certificate_by(self, *, sha256: str | None = None, ari_id: str | None = None
                       ) -> Row | None: ...

    def mark_replaced_if(self, cert_id: str, *, order_id: str) -> bool: ...

    def revoke_certificate_if(self, cert_id: str, *, reason: int, at: dt.datetime) -> bool: ...

    # external account binding
    def add_eab_key(self, kid: str, hmac_key: bytes) -> None: ...

    def eab_key(self, kid: str) -> Row | None: ...

    def bind_eab_if(self, kid: str, account_id: str) -> bool: ...
