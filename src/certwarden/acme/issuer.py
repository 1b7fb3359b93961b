"""What the ACME core needs from a CA: issue for a checked key under a profile, and revoke.

``acme.authority.AuthorityIssuer`` puts the private CA (``certwarden.ca.Authority``) behind
this; the tests' in-memory CA (``tests/acme_support.MiniCA``) implements it too, with an
alternate chain. The issuer returns DER and the facts ACME stores (serial, SHA-256, the
RFC 9773 identifier, validity), so the ACME core never parses the leaf it was handed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from certwarden.ca.csr import LeafKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Issuance:
    """One signed leaf as the issuer hands it to ACME."""

    leaf_der: bytes
    chain_der: tuple[bytes, ...]  # the issuing CA first, up to (not including) the root
    alternates: tuple[tuple[bytes, ...], ...] = ()  # other chains above the same leaf
    serial: int
    sha256: str  # hex SHA-256 of ``leaf_der``
    ari_id: str  # RFC 9773 certificate identifier
    not_before: dt.datetime
    not_after: dt.datetime


class CertificateIssuer(Protocol):
    @property
    def profiles(self) -> Mapping[str, str]:
        """Profile name -> one-line description (advertised in the directory meta)."""
        ...

    def issue(self, public_key: LeafKey, *, profile: str, dns_names: Sequence[str],
              ip_addresses: Sequence[str], not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> Issuance:
        """Sign for ``public_key`` (from a CSR the ACME core verified and checked against
        ``certwarden.ca.csr.check_key``) or raise ``CertwardenError``."""
        ...

    def revoke(self, serial: int, *, reason: int) -> None: ...
