"""What a rule sees: one certificate where it was seen, plus an index of the whole estate.

The ``Estate`` is built in one pass over the inventory and holds only counts and a few
fingerprints, so a million certificates fit in memory (bench/assess.py measures it).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import posixpath
from collections.abc import Iterable, Set
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
    # Names that signed another certificate of the estate: a CA:TRUE certificate whose name
    # is here is a CA in use, not a service's own certificate (see ``used_as_leaf``).
    issuers: set[str] = field(default_factory=set)
    _seen_pairs: set[int] = field(default_factory=set, repr=False)
    _seen_certs: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def build(cls, sightings: Iterable[Sighting], certificates: Iterable[Certificate] = ()
              ) -> Estate:
        estate = cls()
        issuers = estate.issuers
        for s in sightings:
            estate.add(s.certificate, s.location.uri)
            for c in s.chain:
                if not c.self_issued:
                    issuers.add(c.issuer)
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
        if not cert.self_issued:
            self.issuers.add(cert.issuer)
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
    # Automation will renew it (a managed certificate): ``expiring-soon`` stays quiet. Set by
    # the engine from ``assess(..., managed=...)``; false unless a caller says otherwise.
    managed: bool = False

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
        """What the certificate is used as, whatever its basicConstraints say (``used_as_leaf``)."""
        return used_as_leaf(self.certificate, self.sighting, self.estate.issuers)

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

    @property
    def named(self) -> bool:
        """The client used a name (SNI, or a host name), not a bare IP address without SNI."""
        s = self.sighting
        if s is None or s.location.sni:
            return s is not None
        return s.location.host is not None and not _is_ip(s.location.host)


def used_as_leaf(cert: Certificate, sighting: Sighting | None, issuers: Set[str]) -> bool:
    """Is ``cert`` used as a service's own certificate (the one home of this judgement)?

    Served at position 0 of a handshake: yes, whatever basicConstraints say (``openssl req
    -x509`` and many appliances mark their self-signed certificate CA:TRUE). An issuer in a
    presented chain: no. Stored: an end-entity certificate, yes; a CA:TRUE one only when it
    is first in its file, paired with its private key, and signed no other certificate of
    the estate (``issuers``) -- a CA certificate seen only as an issuer or in a trust bundle
    is trust, not a served identity.
    """
    if sighting is not None and sighting.location.kind in _SERVED_KINDS:
        return sighting.position == 0
    if not cert.is_ca:
        return True
    return (sighting is not None and sighting.position == 0 and sighting.key is not None
            and cert.subject not in issuers and _key_beside(sighting))


def _key_beside(s: Sighting) -> bool:
    """The key is the service's: in the same file or directory, or a sibling directory
    (Debian's /etc/ssl/certs + /etc/ssl/private). The same certificate copied into a trust
    store (/usr/local/share/ca-certificates) pairs with the key by public key too, but is
    not where a service reads its own certificate from."""
    path, key = s.location.path, s.key
    if s.location.kind is not LocationKind.FILE or not path or key is None:
        return True  # a keystore or Secret holds certificate and key together
    cert_dir, key_dir = posixpath.dirname(path), posixpath.dirname(key.path)
    return cert_dir == key_dir or posixpath.dirname(cert_dir) == posixpath.dirname(key_dir)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_local_name(name: str) -> bool:
    host = name.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost") or host == "localhost.localdomain":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
