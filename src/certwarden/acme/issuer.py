"""What the ACME core needs from the CA: issue from a CSR under a profile, and revoke.

The private CA's ``Authority`` satisfies this (through a thin adapter in the web layer's
composition root if its names differ); tests use a real in-test CA built with cryptography.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class PemChain:
    """PEM certificates, leaf first; ``alternates`` are other chains to the same leaf."""

    chain: tuple[str, ...]
    alternates: tuple[tuple[str, ...], ...] = ()


class CertificateIssuer(Protocol):
    @property
    def profiles(self) -> Mapping[str, str]:
        """Profile name -> one-line description (advertised in the directory meta)."""
        ...

    def issue(self, csr_der: bytes, *, profile: str, dns_names: Sequence[str],
              ip_addresses: Sequence[str], not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> PemChain:
        """Sign ``csr_der`` (already checked by the ACME core) or raise ``CertwardenError``."""
        ...

    def revoke(self, serial: int, *, reason: int) -> None: ...
