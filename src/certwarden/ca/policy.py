"""Name policy and the CA's configuration (stored in the ledger as one JSON document)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from certwarden.ca.errors import RequestRefused
from certwarden.ca.names import Name, NameKind, spiffe_id
from certwarden.ca.profiles import Profile
from certwarden.errors import UsageError

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DNS_SUFFIX = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*", re.IGNORECASE)


def _str_list(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A list of strings from YAML/JSON/the command line; anything else is one clear error."""
    value = data.get(key, ())
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise UsageError(f"policy: {key} must be a list")
    if not all(isinstance(x, str | int) and not isinstance(x, bool) for x in value):
        raise UsageError(f"policy: {key} must be a list of strings")
    return tuple(str(x) for x in value)


def _dns_suffixes(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    out = tuple(x.lower() for x in _str_list(data, key))
    for suffix in out:
        if len(suffix) > 253 or not _DNS_SUFFIX.fullmatch(suffix):
            raise UsageError(f"policy: {key}: not a DNS name suffix: {suffix!r}")
    return out


def _suffix_match(name: str, suffix: str) -> bool:
    s = suffix.lower().lstrip(".")
    return name == s or name.endswith("." + s)


@dataclass(frozen=True, slots=True, kw_only=True)
class NamePolicy:
    """Empty allow lists allow everything of that kind; deny lists always win."""

    allowed_dns: tuple[str, ...] = ()
    denied_dns: tuple[str, ...] = ()
    allowed_ip: tuple[Network, ...] = ()
    spiffe_trust_domains: tuple[str, ...] = ()

    def check(self, names: Iterable[Name]) -> None:
        for n in names:
            self.check_one(n)

    def check_one(self, n: Name) -> None:
        if n.kind is NameKind.DNS:
            bare = n.value.removeprefix("*.")
            for d in self.denied_dns:
                if _suffix_match(bare, d):
                    raise RequestRefused(f"{n.value} is under denied suffix {d}", rule="dns-deny")
            if self.allowed_dns and not any(_suffix_match(bare, a) for a in self.allowed_dns):
                raise RequestRefused(f"{n.value} is outside the allowed DNS suffixes "
                                     f"({', '.join(self.allowed_dns)})", rule="dns-allow")
        elif n.kind is NameKind.IP:
            ip = ipaddress.ip_address(n.value)
            if self.allowed_ip and not any(ip in net for net in self.allowed_ip):
                raise RequestRefused(f"{n.value} is outside the allowed IP ranges "
                                     f"({', '.join(map(str, self.allowed_ip))})", rule="ip-allow")
        elif n.value.startswith("spiffe://"):
            domain, _ = spiffe_id(n.value)
            if self.spiffe_trust_domains and domain not in self.spiffe_trust_domains:
                raise RequestRefused(f"trust domain {domain} is not one of "
                                     f"{', '.join(self.spiffe_trust_domains)}",
                                     rule="spiffe-trust-domain")

    def as_dict(self) -> dict[str, Any]:
        return {"allowed_dns": list(self.allowed_dns), "denied_dns": list(self.denied_dns),
                "allowed_ip": [str(n) for n in self.allowed_ip],
                "spiffe_trust_domains": list(self.spiffe_trust_domains)}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> NamePolicy:
        if not isinstance(data, Mapping):
            raise UsageError("policy must be a mapping")
        try:
            nets = tuple(ipaddress.ip_network(x, strict=False)
                         for x in _str_list(data, "allowed_ip"))
        except ValueError as exc:
            raise UsageError(f"policy: {exc}") from None
        return cls(allowed_dns=_dns_suffixes(data, "allowed_dns"),
                   denied_dns=_dns_suffixes(data, "denied_dns"),
                   allowed_ip=nets,
                   spiffe_trust_domains=_str_list(data, "spiffe_trust_domains"))


@dataclass(frozen=True, slots=True, kw_only=True)
class CaConfig:
    """Per-CA settings: the base URL leaves point to (AIA OCSP, CRL DP), policy, profiles."""

    base_url: str = DEFAULT_BASE_URL
    policy: NamePolicy = field(default_factory=NamePolicy)
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    raw_profiles: Mapping[str, Any] = field(default_factory=dict)

    def ocsp_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/ocsp"

    def crl_url(self, issuer: str) -> str:
        return f"{self.base_url.rstrip('/')}/crl/{issuer}.crl"

    def as_dict(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "policy": self.policy.as_dict(),
                "profiles": dict(self.raw_profiles)}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CaConfig:
        base = str(data.get("base_url") or DEFAULT_BASE_URL)
        if not base.startswith(("http://", "https://")):
            raise UsageError(f"base URL must be http(s)://...: {base!r}")
        if not isinstance(data.get("profiles") or {}, Mapping):
            raise UsageError("profiles must be a mapping of name to profile")
        raw = dict(data.get("profiles") or {})
        if not all(isinstance(v, Mapping) for v in raw.values()):
            raise UsageError("profiles: each profile must be a mapping")
        return cls(base_url=base, policy=NamePolicy.from_mapping(data.get("policy") or {}),
                   profiles={k: Profile.from_mapping(k, v) for k, v in raw.items()},
                   raw_profiles=raw)


def config_key(issuer: str) -> str:
    """The ledger setting that holds ``issuer``'s ``CaConfig``."""
    return f"ca.config.{issuer}"
