"""Records shared by every source and by the store: where a certificate lives, a sighting,
and the outcome of one attempt.

A source (network scan, file sweep, Kubernetes, packet capture) yields ``Sighting | Outcome``:
a certificate seen, or what happened at a place it looked (one status vocabulary for every
source). The store's recorder keeps both; rules read the sightings. Imports only
``certwarden.x509``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import quote, urlencode

from certwarden.x509 import Certificate


class Severity(StrEnum):
    """How bad: one closed, ordered vocabulary for findings (assess) and alerts (traffic)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r} (one of: {names})") from None


_RANK = {s: i for i, s in enumerate(Severity)}


class LocationKind(StrEnum):
    TLS = "tls"  # tls://host:port?sni=..&starttls=..
    FILE = "file"  # file:///path
    K8S = "k8s"  # k8s://context/namespace/secret#key
    PCAP = "pcap"  # pcap://file#flow


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """Where a certificate is served or stored. ``uri`` is the stable identity."""

    kind: LocationKind
    uri: str
    host: str | None = None  # the name or IP a client uses (TLS, pcap server side)
    port: int | None = None
    sni: str | None = None
    starttls: str | None = None
    path: str | None = None  # file path, k8s namespace/secret, pcap file

    @classmethod
    def tls(cls, host: str, port: int, *, sni: str | None = None,
            starttls: str | None = None) -> Location:
        h = f"[{host}]" if ":" in host else host
        query = {k: v for k, v in (("sni", sni), ("starttls", starttls)) if v}
        uri = f"tls://{h}:{port}" + (f"?{urlencode(query)}" if query else "")
        return cls(kind=LocationKind.TLS, uri=uri, host=host, port=port, sni=sni,
                   starttls=starttls)

    @classmethod
    def file(cls, path: str) -> Location:
        return cls(kind=LocationKind.FILE, uri="file://" + quote(path), path=path)

    @classmethod
    def k8s(cls, context: str, namespace: str, name: str, key: str) -> Location:
        return cls(kind=LocationKind.K8S, uri=f"k8s://{context}/{namespace}/{name}#{key}",
                   path=f"{namespace}/{name}")

    @classmethod
    def pcap(cls, file: str, flow: str, *, server: str | None = None,
             port: int | None = None, sni: str | None = None) -> Location:
        return cls(kind=LocationKind.PCAP, uri=f"pcap://{quote(file)}#{flow}", path=file,
                   host=server, port=port, sni=sni)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyFile:
    """A private key found beside a certificate (never the key itself)."""

    path: str
    encrypted: bool
    mode: int | None = None  # st_mode & 0o777
    owner: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sighting:
    """A certificate seen at a location at a time, with the chain presented and context."""

    certificate: Certificate
    location: Location
    seen_at: dt.datetime  # aware UTC
    chain: tuple[Certificate, ...] = ()  # as presented after the leaf (issuers), may be empty
    position: int = 0  # 0 = leaf / first in file
    tls_version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    file_mode: int | None = None
    file_owner: str | None = None
    key: KeyFile | None = None  # matching private key, when one was found
    extra: dict[str, str] = field(default_factory=dict)  # source-specific (ja3, ja4 ...)


class OutcomeStatus(StrEnum):
    """What happened at one place a source looked: one vocabulary for every source.

    The values are what the inventory's status column holds and what the commands print.
    """

    OK = "ok"
    # network (discovery.net): one per probe that did not end in a sighting
    REFUSED = "refused"  # TCP reset on connect: nothing listens
    CONNECT_TIMEOUT = "connect-timeout"  # no answer to SYN: filtered or dead
    UNREACHABLE = "unreachable"  # no route / network unreachable
    RESOLVE_FAILED = "resolve-failed"
    HOST_DOWN = "host-down"  # not tried: this host's first probe could not connect
    RESET = "reset"  # connection reset after connect
    CLOSED = "closed"  # closed without a TLS answer (half-open, or hung up)
    NOT_TLS = "not-tls"  # answered with something that is not TLS (HTTP, SSH, garbage)
    HANDSHAKE_TIMEOUT = "handshake-timeout"  # connected, never finished the handshake
    HANDSHAKE_FAILED = "handshake-failed"  # a TLS alert: no shared version or cipher ...
    STARTTLS_REFUSED = "starttls-refused"  # the plaintext dialogue said no
    NO_CERTIFICATE = "no-certificate"  # handshake done, but no certificate (PSK, anon)
    BAD_CERTIFICATE = "bad-certificate"  # the leaf presented is not a parsable certificate
    # stored certificates (discovery.files, discovery.k8s)
    NEEDS_PASSWORD = "needs-password"  # noqa: S105 - a status name, not a password
    UNREADABLE = "unreadable"  # permission denied, I/O error
    BROKEN = "broken"  # looked like a certificate container, could not be parsed
    TOO_LARGE = "too-large"
    ORPHAN_KEY = "orphan-key"  # a private key with no certificate found for it
    LOOP = "symlink-loop"
    # captures (traffic)
    ERROR = "error"  # the capture reader gave up: unreadable, or cut short


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What happened at one place a source looked, when that is not (only) a sighting.

    ``location`` is the place as the source names it: a location URI (``tls://``, ``k8s://``)
    or the path of a file or capture. A failure at a location URI the inventory knows lets
    the store tell "gone" from "not looked at".
    """

    location: str
    status: OutcomeStatus
    reason: str | None = None

