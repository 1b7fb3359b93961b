"""Which known network locations a finished scan proves gone: only the endpoints it covered.

A network scan covers an endpoint -- (host, port, SNI) -- when it probed it: every probe
ends as a sighting (observed) or a failing outcome whose target is the location URI. A known
location at that endpoint which the scan did not see is gone when

- the scan reached it with the same STARTTLS protocol (or none, for implicit TLS) and found
  something else or nothing, or
- nothing accepted a connection there at all (refused, timed out, unreachable, host down):
  then no protocol is served on that port.

A scan of other ports, other names or another protocol of the same host proves nothing about
a location and leaves it alone (issue 11: comparing scans by target list marked every
location of a host gone after a scan of its other ports).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from certwarden.records import OutcomeStatus
from certwarden.store.inventory_tables import LocationRow, OutcomeRow

_CHUNK = 500
# Probe outcomes that mean nothing accepted a connection on the port.
CLOSED: frozenset[str] = frozenset({
    OutcomeStatus.REFUSED, OutcomeStatus.CONNECT_TIMEOUT, OutcomeStatus.UNREACHABLE,
    OutcomeStatus.RESOLVE_FAILED, OutcomeStatus.HOST_DOWN})
_ANY = "*"  # in a covered endpoint's protocol set: every protocol (the port is closed)

Endpoint = tuple[str, int, str | None]  # host, port, sni
T = TypeVar("T")


def parse_tls_uri(uri: str) -> tuple[Endpoint, str | None] | None:
    """``tls://host:port?sni=..&starttls=..`` -> ((host, port, sni), starttls), else None."""
    if not uri.startswith("tls://"):
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    host = parts.netloc.rsplit(":", 1)[0].strip("[]") if parts.netloc else ""
    if not host or port is None:
        return None
    query = parse_qs(parts.query)
    sni = query.get("sni", [None])[0]
    starttls = query.get("starttls", [None])[0]
    return (host, port, sni), starttls


def gone_by_coverage(s: Session, scan_id: int, seen_now: set[int]) -> set[int]:
    """Ids of present TLS locations that scan ``scan_id`` covered and did not see."""
    covered: dict[Endpoint, set[str | None]] = defaultdict(set)
    for ids in _chunks(sorted(seen_now)):
        for host, port, sni, starttls in s.execute(
                select(LocationRow.host, LocationRow.port, LocationRow.sni,
                       LocationRow.starttls).where(LocationRow.id.in_(ids),
                                                   LocationRow.kind == "tls")):
            if host is not None and port is not None:
                covered[(host, port, sni)].add(starttls)
    for target, status in s.execute(select(OutcomeRow.target, OutcomeRow.status).where(
            OutcomeRow.scan_id == scan_id)):
        parsed = parse_tls_uri(target)
        if parsed is None:
            continue
        endpoint, starttls = parsed
        covered[endpoint].add(_ANY if status in CLOSED else starttls)
    if not covered:
        return set()
    out: set[int] = set()
    hosts = sorted({host for host, _, _ in covered})
    for chunk in _chunks(hosts):
        rows = s.execute(select(LocationRow.id, LocationRow.host, LocationRow.port,
                                LocationRow.sni, LocationRow.starttls)
                         .where(LocationRow.kind == "tls", LocationRow.gone_at.is_(None),
                                LocationRow.host.in_(chunk)))
        for loc_id, host, port, sni, starttls in rows:
            protocols = (covered.get((host, port, sni))
                         if host is not None and port is not None else None)
            if protocols and loc_id not in seen_now and (
                    _ANY in protocols or starttls in protocols):
                out.add(loc_id)
    return out


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]
