"""From captures to what a user reads: sessions, certificates (each once), alerts, sightings.

``observe()`` runs the analyzer over many files, parses each distinct certificate once (a
busy capture repeats the same chain thousands of times), judges the chain, applies the alert
rules, and yields ``Event``s. One bad file never stops the others: its error is an event.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from certwarden.errors import CertwardenError
from certwarden.records import Location, Outcome, OutcomeStatus, Sighting
from certwarden.traffic.alerts import Alert, Blocklist, Context, evaluate
from certwarden.traffic.analyzer import CaptureStats, analyze
from certwarden.traffic.session import TlsSession
from certwarden.x509 import Certificate, Kind
from certwarden.x509.ja4x import ja4x


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """One session with its certificates parsed and judged."""

    session: TlsSession
    chain: tuple[Certificate, ...]  # server chain, parsed (unparsable ones left out)
    client_chain: tuple[Certificate, ...]
    validation_status: str | None
    unparsable: tuple[str, ...] = ()  # "sha256: reason" for DER that is not a certificate
    alerts: tuple[Alert, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCertificate:
    certificate: Certificate
    ja4x: str | None
    capture: str
    flow: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureDone:
    stats: CaptureStats

    @property
    def outcome(self) -> Outcome:
        """What the inventory keeps of the capture: ``ok``, or ``error`` with the reason
        (the statistics stay in ``stats``, for the capture's JSON line)."""
        st = self.stats
        return Outcome(location=st.path,
                       status=OutcomeStatus.ERROR if st.error else OutcomeStatus.OK,
                       reason=st.error)


Event = Observed | NewCertificate | CaptureDone


@dataclass(slots=True)
class CertificateCache:
    """Parsed certificates by DER; a parse failure is remembered as its reason."""

    parsed: dict[bytes, Certificate | str] = field(default_factory=dict)

    def get(self, der: bytes, source: str) -> tuple[Certificate | str, bool]:
        """(certificate or failure reason, first time seen)."""
        hit = self.parsed.get(der)
        if hit is not None:
            return hit, False
        try:
            cert = Certificate.from_der(der, source=source)
            cert.as_dict()  # the record computes some fields lazily: fail here, not later
            value: Certificate | str = cert
        except CertwardenError as exc:
            value = str(exc)
        except Exception as exc:
            # The one lenient spot: bytes off the wire that cryptography rejects with an
            # exception the record does not translate (InvalidVersion for a version field of
            # 15; TypeError from a name attribute of the wrong ASN.1 type — both found by
            # fuzzing) must not end the capture; the DER is reported as unparsable.
            value = f"{source}: not a valid DER certificate ({type(exc).__name__}: {exc})"
        self.parsed[der] = value
        return value, True


def validation_status(chain: tuple[Certificate, ...], seen: dt.datetime) -> str | None:
    """A passive judgement of the presented chain (no trust store is consulted)."""
    if not chain:
        return None
    leaf = chain[0]
    if leaf.kind is Kind.SELF_SIGNED:
        return "self signed certificate"
    if leaf.kind is Kind.SELF_ISSUED:
        return "self-issued certificate whose signature does not verify with its own key"
    if seen > leaf.not_after:
        return "certificate has expired"
    if seen < leaf.not_before:
        return "certificate is not yet valid"
    for i in range(len(chain) - 1):
        if chain[i].issuer != chain[i + 1].subject:
            return f"chain does not link (issuer of #{i} is not the subject of #{i + 1})"
    return "chain links (not checked against a trust store)"


def observe(paths: Iterable[str], *, ja4plus: bool = True, blocklist: Blocklist | None = None,
            known: Callable[[str], bool] | None = None, with_alerts: bool = False,
            ) -> Iterator[Event]:
    cache = CertificateCache()
    bl = blocklist or Blocklist()
    for path in paths:
        stats = CaptureStats(path=path)
        try:
            for session in analyze(path, ja4plus=ja4plus, stats=stats):
                yield from _observe_session(session, cache, bl, known, with_alerts, ja4plus)
        except CertwardenError as exc:
            stats.error = getattr(exc, "reason", str(exc))
        yield CaptureDone(stats=stats)


def _observe_session(s: TlsSession, cache: CertificateCache, bl: Blocklist,
                     known: Callable[[str], bool] | None, with_alerts: bool, ja4plus: bool,
                     ) -> Iterator[Event]:
    chains: list[list[Certificate]] = [[], []]
    bad: list[str] = []
    for which, ders in enumerate((s.server_chain, s.client_chain)):
        for der in ders:
            value, first = cache.get(der, f"pcap://{s.capture}#{s.flow}")
            if isinstance(value, str):
                bad.append(value)
                continue
            chains[which].append(value)
            if first:
                yield NewCertificate(certificate=value, capture=s.capture, flow=s.flow,
                                     ja4x=_ja4x(value.der) if ja4plus else None)
    chain = tuple(chains[0])
    seen = dt.datetime.fromtimestamp(s.start, tz=dt.UTC)
    leaf = chain[0] if chain and s.server_chain and chain[0].der == s.server_chain[0] else None
    alerts: tuple[Alert, ...] = ()
    if with_alerts:
        alerts = tuple(evaluate(Context(session=s, leaf=leaf, chain=chain, blocklist=bl,
                                        known=known)))
    yield Observed(session=s, chain=chain, client_chain=tuple(chains[1]),
                   validation_status=validation_status(chain, seen), unparsable=tuple(bad),
                   alerts=alerts)


def _ja4x(der: bytes) -> str | None:
    try:
        return ja4x(der)
    except CertwardenError:
        return None


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="microseconds")


def session_row(o: Observed) -> dict[str, Any]:
    """One JSON line per session, in the spirit of Zeek's ssl.log."""
    s = o.session
    return {
        "type": "session", "capture": s.capture, "flow": s.flow, "transport": s.transport,
        "client": s.client, "client_port": s.client_port,
        "server": s.server, "server_port": s.server_port,
        "start": _iso(s.start), "end": _iso(s.end),
        "version": s.version, "cipher": s.cipher, "sni": s.sni,
        "alpn_offered": list(s.alpn_offered), "alpn": s.alpn,
        "ja3": s.ja3, "ja3s": s.ja3s, "ja4": s.ja4, "ja4s": s.ja4s,
        "server_chain": [c.sha256 for c in o.chain],
        "client_chain": [c.sha256 for c in o.client_chain],
        "unparsable_certificates": list(o.unparsable),
        "starttls": s.starttls, "established": s.established, "hello_retry": s.retry,
        "validation_status": o.validation_status, "notes": list(s.notes),
    }


def certificate_row(n: NewCertificate) -> dict[str, Any]:
    """One JSON line per distinct certificate, in the spirit of Zeek's x509.log."""
    return {"type": "certificate", **n.certificate.as_dict(), "ja4x": n.ja4x,
            "first_capture": n.capture, "first_flow": n.flow}


def capture_row(stats: CaptureStats) -> dict[str, Any]:
    return {"type": "capture", "path": stats.path, "frames": stats.frames,
            "bytes": stats.bytes, "undecoded_frames": stats.undecoded,
            "sessions": stats.sessions, "certificates": stats.certificates,
            "max_open_flows": stats.max_open_flows,
            "unsupported_linktypes": sorted(stats.unsupported_linktypes),
            "error": stats.error}


def sightings_from_capture(path: str, *, ja4plus: bool = True) -> Iterator[Sighting]:
    """Every server certificate a capture shows, as inventory ``Sighting``s at
    ``pcap://file#flow`` (one per session presenting a parsable leaf)."""
    for event in observe([path], ja4plus=ja4plus):
        if isinstance(event, Observed):
            sighting = sighting_of(event, path, ja4plus=ja4plus)
            if sighting is not None:
                yield sighting
        elif isinstance(event, CaptureDone) and event.stats.error and not event.stats.frames:
            raise CaptureUnreadableError(path, event.stats.error)


class CaptureUnreadableError(CertwardenError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.source, self.reason = path, reason


def sighting_of(o: Observed, path: str, *, ja4plus: bool = True) -> Sighting | None:
    s = o.session
    if not o.chain or not s.server_chain or o.chain[0].der != s.server_chain[0]:
        return None
    extra = {k: v for k, v in (("ja3", s.ja3), ("ja3s", s.ja3s), ("ja4", s.ja4),
                                ("ja4s", s.ja4s), ("starttls", s.starttls),
                                ("client", f"{s.client}:{s.client_port}"),
                                ("transport", s.transport)) if v}
    x = _ja4x(o.chain[0].der) if ja4plus else None
    if x:
        extra["ja4x"] = x
    return Sighting(
        certificate=o.chain[0],
        location=Location.pcap(os.path.abspath(path), s.flow, server=s.server,
                               port=s.server_port, sni=s.sni),
        seen_at=dt.datetime.fromtimestamp(s.start, tz=dt.UTC),
        chain=o.chain[1:], position=0, tls_version=s.version, cipher=s.cipher, alpn=s.alpn,
        extra=extra)
