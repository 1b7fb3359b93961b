"""Issuance profiles: what a leaf looks like (key usage, EKU, lifetime, which names).

Built in: ``tls-server``, ``tls-client``, ``spiffe`` (X.509-SVID, spiffe/standards
X509-SVID.md). Custom profiles come from the CA configuration (``Profile.from_mapping``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.x509.oid import ExtendedKeyUsageOID

from certwarden.ca.errors import NotFound
from certwarden.ca.names import NameKind
from certwarden.errors import UsageError

# The CA/Browser Forum's ceiling falls to 47 days by 2029; leaves default to 30 and no
# profile may exceed the policy cap below.
DEFAULT_LIFETIME = dt.timedelta(days=30)
MAX_LIFETIME = dt.timedelta(days=47)

_EKU = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
        "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
        "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
        "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION}


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    name: str
    extended_key_usage: tuple[str, ...]
    name_kinds: frozenset[NameKind]
    lifetime: dt.timedelta = DEFAULT_LIFETIME
    max_lifetime: dt.timedelta = MAX_LIFETIME
    spiffe: bool = False        # X.509-SVID: exactly one spiffe:// URI SAN, no CN requirement
    require_names: bool = True

    def __post_init__(self) -> None:
        unknown = [e for e in self.extended_key_usage if e not in _EKU]
        if unknown:
            raise UsageError(f"profile {self.name}: unknown extended key usage {unknown[0]!r}; "
                             f"one of: {', '.join(_EKU)}")
        if self.lifetime > self.max_lifetime or self.lifetime <= dt.timedelta(0):
            raise UsageError(f"profile {self.name}: lifetime must be positive and at most "
                             f"{self.max_lifetime.days} days")

    @property
    def eku_oids(self) -> list[Any]:
        return [_EKU[e] for e in self.extended_key_usage]

    @classmethod
    def from_mapping(cls, name: str, data: Mapping[str, Any]) -> Profile:
        try:
            kinds = frozenset(NameKind(k) for k in data.get("names", ("dns", "ip")))
            days = float(data.get("lifetime_days", DEFAULT_LIFETIME.days))
            cap = float(data.get("max_lifetime_days", MAX_LIFETIME.days))
        except (ValueError, TypeError) as exc:
            raise UsageError(f"profile {name}: {exc}") from None
        if cap > MAX_LIFETIME.days:
            raise UsageError(f"profile {name}: max_lifetime_days is capped by policy at "
                             f"{MAX_LIFETIME.days}")
        return cls(name=name, extended_key_usage=tuple(data.get("extended_key_usage",
                                                                ("serverAuth",))),
                   name_kinds=kinds, lifetime=dt.timedelta(days=days),
                   max_lifetime=dt.timedelta(days=cap), spiffe=bool(data.get("spiffe", False)))


BUILTIN: dict[str, Profile] = {
    "tls-server": Profile(name="tls-server", extended_key_usage=("serverAuth",),
                          name_kinds=frozenset({NameKind.DNS, NameKind.IP})),
    "tls-client": Profile(name="tls-client", extended_key_usage=("clientAuth",),
                          name_kinds=frozenset({NameKind.DNS, NameKind.IP, NameKind.URI})),
    "spiffe": Profile(name="spiffe", extended_key_usage=("serverAuth", "clientAuth"),
                      name_kinds=frozenset({NameKind.URI, NameKind.DNS}), spiffe=True,
                      lifetime=dt.timedelta(hours=1)),
}


def resolve(name: str, custom: Mapping[str, Profile]) -> Profile:
    found = custom.get(name) or BUILTIN.get(name)
    if found is None:
        raise NotFound(f"unknown profile {name!r}; one of: "
                       f"{', '.join(sorted({*BUILTIN, *custom}))}")
    return found
