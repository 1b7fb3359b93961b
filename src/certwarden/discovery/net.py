"""The network scanner: asyncio, bounded concurrency, optional rate, typed outcomes.

Every endpoint ends as one ``ProbeResult`` with an ``OutcomeStatus``; nothing raises out of a
probe. ``ProbeResult.record`` turns it into what the inventory keeps: a ``Sighting``, or an
``Outcome`` saying why not.
Verification is off (a scanner must see the bad certificates too) and the whole presented
chain is kept, leaf first.

Scheduling, in one place:
- ``concurrency`` workers share one lazy iterator of endpoints, so at most that many sockets
  are open (clamped below the process's file-descriptor limit).
- the first probe of a host is its gate: while it connects, other probes of that host wait;
  if it cannot connect (timeout, unreachable, unresolvable) every other port of that host
  is reported ``host-down`` at once, so a dead or filtered host costs one timeout, not one
  per port. Endpoints come in blocks of hosts taken port by port (``targets.endpoints``), so
  many gates run side by side.
- ``rate`` spaces connection attempts evenly (a token per 1/rate s), across all workers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import resource
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from certwarden.discovery.starttls import DIALOGUES, Refused, sniff
from certwarden.discovery.targets import STARTTLS_PORTS, Endpoint, Starttls
from certwarden.discovery.tls_fetch import presented_chain, scanner_context
from certwarden.errors import ParseError
from certwarden.records import Location, Outcome, OutcomeStatus, Sighting
from certwarden.x509 import Certificate

# Outcomes where a TCP connection was made: "reached" for --json-out.
REACHED = frozenset({OutcomeStatus.OK, OutcomeStatus.RESET, OutcomeStatus.CLOSED,
                     OutcomeStatus.NOT_TLS, OutcomeStatus.HANDSHAKE_TIMEOUT,
                     OutcomeStatus.HANDSHAKE_FAILED, OutcomeStatus.STARTTLS_REFUSED,
                     OutcomeStatus.NO_CERTIFICATE, OutcomeStatus.BAD_CERTIFICATE})
# Worth another try with --retries: transient by nature.
_RETRY = frozenset({OutcomeStatus.CONNECT_TIMEOUT, OutcomeStatus.RESET, OutcomeStatus.CLOSED,
                    OutcomeStatus.HANDSHAKE_TIMEOUT})
_DEAD = frozenset({OutcomeStatus.CONNECT_TIMEOUT, OutcomeStatus.UNREACHABLE,
                   OutcomeStatus.RESOLVE_FAILED})
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG",
                    "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "UNEXPECTED_RECORD",
                    "RECORD_LENGTH_MISMATCH", "BAD_PACKET_LENGTH", "ENCRYPTED_LENGTH_TOO_LONG",
                    "UNEXPECTED_MESSAGE", "LENGTH_MISMATCH", "TLSV1_ALERT_PROTOCOL_VERSION")


class StarttlsMode(StrEnum):
    AUTO = "auto"
    NONE = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanOptions:
    concurrency: int = 200
    rate: float | None = None  # connection attempts per second, all workers together
    connect_timeout: float = 3.0
    handshake_timeout: float = 5.0  # STARTTLS dialogue + TLS handshake
    retries: int = 0
    starttls: StarttlsMode | Starttls = StarttlsMode.AUTO
    banner_wait: float = 1.0  # auto mode: how long to wait for a server-first banner
    alpn: tuple[str, ...] = ("h2", "http/1.1")

    def __post_init__(self) -> None:
        mode = str(self.starttls).lower()
        value = StarttlsMode(mode) if mode in set(StarttlsMode) else Starttls(mode)
        object.__setattr__(self, "starttls", value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    endpoint: Endpoint
    status: OutcomeStatus
    reason: str | None = None
    starttls: Starttls | None = None  # the dialogue actually used
    chain: tuple[bytes, ...] = ()  # DER, leaf first, as presented
    tls_version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    elapsed: float = 0.0
    attempts: int = 1
    banner: bytes = field(default=b"", repr=False)  # what a server said before any TLS

    @property
    def location(self) -> Location:
        ep = self.endpoint
        sni = ep.sni if ep.sni and ep.sni != ep.host else None
        return Location.tls(ep.host, ep.port, sni=sni,
                            starttls=str(self.starttls) if self.starttls else None)

    @property
    def error(self) -> str | None:
        if self.status is OutcomeStatus.OK:
            return None
        return f"{self.status}: {self.reason}" if self.reason else str(self.status)

    def certificates(self, cache: dict[bytes, Certificate] | None = None,
                     ) -> tuple[Certificate, ...]:
        """The presented chain parsed; an unparsable leaf raises ``ParseError``.

        ``cache`` (DER -> record) saves parsing the intermediates many servers share.
        """
        where = self.location.uri
        memo = cache if cache is not None else {}
        out: list[Certificate] = []
        for n, der in enumerate(self.chain):
            cert = memo.get(der)
            if cert is None:
                try:
                    cert = Certificate.from_der(der, source=f"{where} (chain {n})" if n
                                                else where)
                except ParseError:
                    if n == 0:
                        raise
                    continue  # a broken intermediate: keep the leaf and the rest
                if n:  # leaves are mostly unique: remember only the issuers
                    memo[der] = cert
            out.append(cert)
        return tuple(out)

    def sighting(self, seen_at: dt.datetime | None = None,
                 certs: tuple[Certificate, ...] | None = None) -> Sighting | None:
        if self.status is not OutcomeStatus.OK or not self.chain:
            return None
        certs = certs if certs is not None else self.certificates()
        extra = {} if len(certs) == len(self.chain) else {
            "chain_unparsable": str(len(self.chain) - len(certs))}
        return Sighting(certificate=certs[0], location=self.location,
                        seen_at=seen_at or dt.datetime.now(dt.UTC), chain=certs[1:],
                        tls_version=self.tls_version, cipher=self.cipher, alpn=self.alpn,
                        extra=extra)

    def record(self, cache: dict[bytes, Certificate] | None = None) -> Sighting | Outcome:
        """What the inventory keeps of this probe: its sighting, or an outcome saying why not.

        A handshake whose leaf does not parse ends as ``bad-certificate``. ``cache`` as for
        ``certificates`` (the recorder passes its own, shared by the whole scan).
        """
        where = self.location.uri
        if self.status is OutcomeStatus.OK:
            try:
                certs = self.certificates(cache)
            except ParseError as exc:
                return Outcome(location=where, status=OutcomeStatus.BAD_CERTIFICATE,
                               reason=exc.reason)
            sighting = self.sighting(None, certs)
            if sighting is not None:
                return sighting
        return Outcome(location=where, status=self.status, reason=self.reason)


@dataclass(slots=True)
class _Gate:
    """What the first probe of a host learned: alive, or dead with why."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    dead: str | None = None


class _Rate:
    def __init__(self, per_second: float | None) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


def effective_concurrency(wanted: int) -> int:
    """``wanted``, kept below the open-file limit (each probe holds one socket)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = soft - 64 if soft != resource.RLIM_INFINITY else wanted
    return max(1, min(wanted, room))


class Scanner:
    def __init__(self, options: ScanOptions | None = None) -> None:
        self.options = options or ScanOptions()
        self._ctx = scanner_context(self.options.alpn)
        self._rate = _Rate(self.options.rate)
        self._gates: dict[str, _Gate] = {}

    async def scan(self, endpoints: Iterable[Endpoint]) -> AsyncIterator[ProbeResult]:
        """Probe every endpoint; results arrive as they finish (not in input order)."""
        it = iter(endpoints)
        out: asyncio.Queue[ProbeResult | None] = asyncio.Queue()
        workers = [asyncio.create_task(self._worker(it, out))
                   for _ in range(effective_concurrency(self.options.concurrency))]
        running = len(workers)
        try:
            while running:
                item = await out.get()
                if item is None:
                    running -= 1
                    continue
                yield item
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self, it: Iterator[Endpoint],
                      out: asyncio.Queue[ProbeResult | None]) -> None:
        try:
            for ep in it:
                out.put_nowait(await self.probe(ep))
        finally:
            out.put_nowait(None)

    async def probe(self, ep: Endpoint) -> ProbeResult:
        gate = self._gates.get(ep.host)
        opener = gate is None
        if gate is None:
            gate = self._gates[ep.host] = _Gate()
        else:
            await gate.done.wait()
            if gate.dead is not None:
                return ProbeResult(endpoint=ep, status=OutcomeStatus.HOST_DOWN,
                                   reason=gate.dead)
        try:
            return await self._probe(ep, gate if opener else None)
        finally:
            gate.done.set()

    async def _probe(self, ep: Endpoint, gate: _Gate | None) -> ProbeResult:
        opts = self.options
        proto = _planned_starttls(ep, opts.starttls)
        result = await self._with_retries(ep, proto, gate)
        if (result.status is OutcomeStatus.NOT_TLS and proto is None
                and opts.starttls is StarttlsMode.AUTO):
            found = sniff(result.banner) if result.banner else await self._sniff(ep)
            if found is not None:
                again = await self._with_retries(ep, found, None)
                result = again if again.status is OutcomeStatus.OK or again.status not in (
                    OutcomeStatus.CONNECT_TIMEOUT, OutcomeStatus.REFUSED) else result
        return result

    async def _with_retries(self, ep: Endpoint, proto: Starttls | None,
                            gate: _Gate | None) -> ProbeResult:
        attempts = 0
        while True:
            attempts += 1
            last = attempts > self.options.retries
            result = await self._attempt(ep, proto, gate)
            if result.status not in _RETRY or last:
                if gate is not None and result.status in _DEAD:
                    gate.dead = f"port {ep.port}: {result.error}"
                return _with(result, attempts=attempts)

    async def _connect(self, ep: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        await self._rate.wait()
        return await asyncio.wait_for(asyncio.open_connection(ep.host, ep.port),
                                      self.options.connect_timeout)

    async def _attempt(self, ep: Endpoint, proto: Starttls | None,
                       gate: _Gate | None) -> ProbeResult:
        t0 = time.perf_counter()
        try:
            reader, writer = await self._connect(ep)
        except (TimeoutError, OSError) as exc:
            status, reason = _connect_failure(exc, self.options.connect_timeout)
            return ProbeResult(endpoint=ep, status=status, reason=reason, starttls=proto,
                               elapsed=time.perf_counter() - t0)
        if gate is not None:
            gate.done.set()  # connected: the host is alive, let its other ports go
        try:
            async with asyncio.timeout(self.options.handshake_timeout):
                if proto is not None:
                    await DIALOGUES[proto](reader, writer, ep.sni or ep.host)
                    await writer.drain()
                elif early := _early(reader):
                    return ProbeResult(endpoint=ep, status=OutcomeStatus.NOT_TLS, banner=early,
                                       reason=f"the server spoke first: {_show(early)}",
                                       elapsed=time.perf_counter() - t0)
                await writer.start_tls(self._ctx, server_hostname=ep.sni)
            tls: Any = writer.get_extra_info("ssl_object")
            chain = presented_chain(tls)
            cipher = tls.cipher()
            status = OutcomeStatus.OK if chain else OutcomeStatus.NO_CERTIFICATE
            return ProbeResult(endpoint=ep, status=status, starttls=proto, chain=chain,
                               tls_version=tls.version(), cipher=cipher[0] if cipher else None,
                               alpn=tls.selected_alpn_protocol(),
                               elapsed=time.perf_counter() - t0)
        except TimeoutError:
            what = f"{proto} dialogue or TLS handshake" if proto else "TLS handshake"
            status, reason = OutcomeStatus.HANDSHAKE_TIMEOUT, (
                f"{what} not finished within {self.options.handshake_timeout:g}s")
        except Refused as exc:
            status, reason = OutcomeStatus.STARTTLS_REFUSED, exc.reason
        except asyncio.IncompleteReadError:
            status, reason = OutcomeStatus.CLOSED, f"closed during the {proto} dialogue"
        except ssl.SSLError as exc:
            status, reason = _tls_failure(exc)
        except ConnectionResetError as exc:
            # asyncio reports a FIN during the handshake as a bare ConnectionResetError;
            # a real reset from the kernel carries ECONNRESET.
            status, reason = ((OutcomeStatus.RESET, "connection reset by peer") if exc.errno
                              else (OutcomeStatus.CLOSED,
                                    "closed by the server before TLS finished"))
        except OSError as exc:
            status, reason = OutcomeStatus.CLOSED, _one_line(exc)
        finally:
            writer.transport.abort()
        early = _early(reader) if proto is None else b""
        if early:
            # It spoke before our ClientHello got an answer: not TLS, whatever broke after.
            status, reason = OutcomeStatus.NOT_TLS, f"the server spoke first: {_show(early)}"
        return ProbeResult(endpoint=ep, status=status, reason=reason, starttls=proto,
                           elapsed=time.perf_counter() - t0, banner=early)

    async def _sniff(self, ep: Endpoint) -> Starttls | None:
        """Connect again and listen: a server-first banner names a STARTTLS protocol."""
        try:
            reader, writer = await self._connect(ep)
        except (TimeoutError, OSError):
            return None
        try:
            banner = await asyncio.wait_for(reader.read(512), self.options.banner_wait)
        except (TimeoutError, OSError):
            return None
        finally:
            writer.transport.abort()
        return sniff(banner)


def _early(reader: asyncio.StreamReader) -> bytes:
    # Bytes the plaintext stream buffered before TLS took over. StreamReader has no public
    # peek; TLS servers never speak first, so any byte here means "not TLS".
    return bytes(getattr(reader, "_buffer", b""))[:512]


def _show(data: bytes) -> str:
    text = " ".join(data.decode("latin-1").split())
    return repr(text[:60])


def _planned_starttls(ep: Endpoint, mode: StarttlsMode | Starttls) -> Starttls | None:
    if ep.starttls is not None:
        return ep.starttls
    if isinstance(mode, Starttls):
        return mode
    if mode is StarttlsMode.AUTO:
        return STARTTLS_PORTS.get(ep.port)
    return None


def _with(result: ProbeResult, *, attempts: int) -> ProbeResult:
    if attempts == 1:
        return result
    return ProbeResult(endpoint=result.endpoint, status=result.status, reason=result.reason,
                       starttls=result.starttls, chain=result.chain,
                       tls_version=result.tls_version, cipher=result.cipher, alpn=result.alpn,
                       elapsed=result.elapsed, attempts=attempts, banner=result.banner)


def _connect_failure(exc: BaseException, timeout: float) -> tuple[OutcomeStatus, str]:
    if isinstance(exc, TimeoutError):
        return OutcomeStatus.CONNECT_TIMEOUT, f"no answer within {timeout:g}s"
    if isinstance(exc, socket.gaierror):
        return OutcomeStatus.RESOLVE_FAILED, _one_line(exc)
    if isinstance(exc, ConnectionRefusedError):
        return OutcomeStatus.REFUSED, "connection refused"
    if isinstance(exc, ConnectionResetError) or getattr(exc, "errno", None) == errno.ECONNRESET:
        return OutcomeStatus.RESET, "connection reset by peer right after connect"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH,
                                                  errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return OutcomeStatus.UNREACHABLE, _one_line(exc)
    if isinstance(exc, OSError) and "Multiple exceptions" in str(exc):
        # open_connection tried several addresses of a name; all refused or unreachable.
        refused = "refused" in str(exc).lower()
        return (OutcomeStatus.REFUSED if refused else OutcomeStatus.UNREACHABLE), _one_line(exc)
    return OutcomeStatus.UNREACHABLE, _one_line(exc)


def _tls_failure(exc: ssl.SSLError) -> tuple[OutcomeStatus, str]:
    reason = str(exc.reason or "")
    if isinstance(exc, ssl.SSLEOFError) or reason == "UNEXPECTED_EOF_WHILE_READING":
        return OutcomeStatus.CLOSED, "closed by the server during the TLS handshake"
    if isinstance(exc, ssl.SSLZeroReturnError):
        return OutcomeStatus.CLOSED, "TLS connection closed during the handshake"
    if reason in _NOT_TLS_REASONS:
        return OutcomeStatus.NOT_TLS, f"the server's answer is not TLS ({reason})"
    return OutcomeStatus.HANDSHAKE_FAILED, reason or _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())[:200] or type(exc).__name__
