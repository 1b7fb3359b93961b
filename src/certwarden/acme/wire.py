"""URLs of the ACME resources and the HTTP-free reply the core hands the web layer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    status: int = 200
    body: Mapping[str, Any] | bytes | None = None
    content_type: str = "application/json"
    location: str | None = None
    links: tuple[tuple[str, str], ...] = ()  # (url, rel)
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Urls:
    """Every resource URL, from the base the client reached us at (``https://h:p/acme``)."""

    base: str

    def directory(self) -> str:
        return f"{self.base}/directory"

    def new_nonce(self) -> str:
        return f"{self.base}/new-nonce"

    def new_account(self) -> str:
        return f"{self.base}/new-account"

    def new_order(self) -> str:
        return f"{self.base}/new-order"

    def revoke_cert(self) -> str:
        return f"{self.base}/revoke-cert"

    def key_change(self) -> str:
        return f"{self.base}/key-change"

    def renewal_info(self, cert_id: str | None = None) -> str:
        return f"{self.base}/renewal-info" + (f"/{cert_id}" if cert_id else "")

    def account(self, account_id: str) -> str:
        return f"{self.base}/account/{account_id}"

    def orders(self, account_id: str, page: int = 0) -> str:
        return f"{self.base}/account/{account_id}/orders" + (f"?page={page}" if page else "")

    def order(self, order_id: str) -> str:
        return f"{self.base}/order/{order_id}"

    def finalize(self, order_id: str) -> str:
        return f"{self.base}/order/{order_id}/finalize"

    def authz(self, authz_id: str) -> str:
        return f"{self.base}/authz/{authz_id}"

    def challenge(self, challenge_id: str) -> str:
        return f"{self.base}/chall/{challenge_id}"

    def certificate(self, cert_id: str, alternate: int = 0) -> str:
        return f"{self.base}/cert/{cert_id}" + (f"/{alternate}" if alternate else "")

    def account_id_from_kid(self, kid: str) -> str | None:
        prefix = f"{self.base}/account/"
        if not kid.startswith(prefix):
            return None
        rest = kid[len(prefix):]
        return rest if rest and "/" not in rest else None
