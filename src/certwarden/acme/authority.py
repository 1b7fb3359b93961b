"""The private CA (``certwarden.ca.Authority``) as the ACME core's ``CertificateIssuer``.

The CA checks its own profile and name policy again; its refusals are ``CertwardenError``s,
which finalize turns into ``badCSR``. Revocation reasons travel as RFC 5280 numbers and are
named by the CA's own table (``RevocationReason.from_code``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from certwarden.acme.issuer import Issuance
from certwarden.ca import Authority, RevocationReason
from certwarden.ca.csr import LeafKey
from certwarden.ca.model import parse_serial
from certwarden.ca.profiles import BUILTIN
from certwarden.errors import CertwardenError


def authority_profiles(authority: Authority) -> dict[str, str]:
    """The CA's profiles (built-in and configured) with a one-line description each."""
    found = {**BUILTIN, **dict(authority.config.profiles)}
    out = {}
    for name, prof in sorted(found.items()):
        days = prof.lifetime.total_seconds() / 86400
        life = f"{days:g} days" if days >= 1 else f"{days * 24:g} hours"
        out[name] = f"{', '.join(prof.extended_key_usage)}; {life}" + (
            "; X.509-SVID (needs a spiffe:// URI, which ACME cannot order)" if prof.spiffe else "")
    return out


class AuthorityIssuer:
    def __init__(self, authority: Authority, *, profiles: Mapping[str, str] | None = None
                 ) -> None:
        self.authority = authority
        self._profiles = MappingProxyType(dict(
            profiles if profiles is not None else authority_profiles(authority)))

    @property
    def profiles(self) -> Mapping[str, str]:
        return self._profiles

    def issue(self, public_key: LeafKey, *, profile: str, dns_names: Sequence[str],
              ip_addresses: Sequence[str], not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> Issuance:
        lifetime = None
        if not_after is not None:
            lifetime = not_after - max(not_before or dt.datetime.now(dt.UTC),
                                       dt.datetime.now(dt.UTC))
            if lifetime <= dt.timedelta(0):
                raise CertwardenError("notAfter is in the past")
        chain = self.authority.issue(public_key=public_key, profile=profile,
                                     names=[*dns_names, *ip_addresses],
                                     requested_by="acme", lifetime=lifetime)
        rec = chain.record
        return Issuance(leaf_der=chain.leaf_der, chain_der=chain.chain_der,
                        serial=parse_serial(rec.serial), sha256=rec.sha256, ari_id=chain.ari_id,
                        not_before=rec.not_before, not_after=rec.not_after)

    def revoke(self, serial: int, *, reason: int) -> None:
        self.authority.revoke(serial, RevocationReason.from_code(reason), requested_by="acme")
