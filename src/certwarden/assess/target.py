"""What a rule sees: one certificate where it was seen, plus an index of the whole estate.

The ``Estate`` is built in one pass over the inventory and holds only counts and a few
fingerprints, so a million certificates fit in memory (bench/assess.py measures it).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from certwarden.assess.policy import Owner, Policy
from certwarden.records import LocationKind, Sighting
from certwarden.x509 import Certificate, Kind
from certwarden.x509.revocation import RevocationIndex
from certwarden.x509.verify import VerifyResult

_SERVED_KINDS = frozenset({LocationKind.TLS, LocationKind.PCAP})


@dataclass(slots=True)
class Estate:
    """Cross-certificate facts: where each certificate is, and which certificates share a key."""

    locations: dict[str, int] = field(default_factory=dict)  # sha256 -> distinct locations
    first_location: dict[str, str] = field(default_factory=dict)
    key_certs: dict[str, list[str]] = field(default_factory=dict)  # spki -> leaf sha256s (<=3)
    key_count: dict[str, int] = field(default_factory=dict)  # spki -> distinct leaf certs
    _seen_pairs: set[int] = field(default_factory=set, repr=False)
    _seen_certs: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def build(cls, sightings: Iterable[Sighting], certificates: Iterable[Certificate] = ()
              ) -> Estate:
        estate = cls()
        for s in sightings:
            estate.add(s.certificate, s.location.uri)
        for c in certificates:
            estate.add(c, None)
        estate._seen_pairs.clear()  # only needed while building
        return estate

    def add(self, cert: Certificate, location: str | None) -> None:
        sha = cert.sha256
        if location is not None:
            pair = hash((sha, location))
            seen_pairs = self._seen_pairs
            if pair not in seen_pairs:
                seen_pairs.add(pair)
                locations = self.locations
                locations[sha] = locations.get(sha, 0) + 1
                self.first_location.setdefault(sha, location)
        seen_certs = self._seen_certs
        if sha in seen_certs:
            return
        seen_certs.add(sha)
        spki = cert.spki_sha256
        if not spki or cert.is_ca:
            return  # a CA and its cross-certificate share a key by design
        key_count = self.key_count
        key_count[spki] = key_count.get(spki, 0) + 1
        shas = self.key_certs.setdefault(spki, [])
        if len(shas) < 3:
            shas.append(sha)

    @property
    def certificate_count(self) -> int:
        return len(self._seen_certs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One certificate as a rule sees it. ``sighting`` is None for a certificate never seen."""

    certificate: Certificate
    sighting: Sighting | None
    estate: Estate
    policy: Policy
    now: dt.datetime
    owner: Owner | None = None
    chain: VerifyResult | None = None  # only for a leaf served with its chain (TLS, pcap)
    revocations: RevocationIndex | None = None  # what the run knows is revoked (see engine)

    @property
    def location(self) -> str | None:
        return self.sighting.location.uri if self.sighting else None

    @property
    def served(self) -> bool:
        """Handed to clients as the leaf of a handshake (not merely stored)."""
        s = self.sighting
        return s is not None and s.location.kind in _SERVED_KINDS and s.position == 0

    @property
    def in_use_as_leaf(self) -> bool:
        """Served as a leaf, or stored as an end-entity certificate (it can only be a leaf)."""
        if self.served:
            return True
        if self.sighting is not None and self.sighting.location.kind in _SERVED_KINDS:
            return False  # an issuer in a presented chain
        return not self.certificate.is_ca

    @property
    def client_name(self) -> str | None:
        """The name or IP address the client used to reach the service."""
        s = self.sighting
        if s is None or s.location.kind not in _SERVED_KINDS or s.position != 0:
            return None
        return s.location.sni or s.location.host

    @property
    def self_signed(self) -> bool:
        return self.certificate.kind == Kind.SELF_SIGNED


def is_local_name(name: str) -> bool:
    host = name.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost") or host == "localhost.localdomain":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
