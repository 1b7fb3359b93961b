"""Fetching CRLs and OCSP answers, bounded in size and time, only where the caller allows.

Nothing is fetched unless the caller builds a ``RevocationFetcher`` (the policy opts in) and
the URL's host is on its allow list: a host name listed by name, or an IP literal inside a
listed address or CIDR. Names are not resolved to decide (a resolver is not a policy), and
redirects are not followed (each hop would need the same decision). Answers are cached in
memory and, given a directory, on disk, until the nextUpdate they carry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from certwarden.errors import ConnectError, ParseError
from certwarden.x509 import Certificate
from certwarden.x509.revocation import (
    CheckedOcspResponse,
    Crl,
    RevocationSource,
    ocsp_request,
    read_ocsp_response,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Clock = Callable[[], dt.datetime]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RevocationFetcher:
    """One per run: the allow list, the bounds, and the cache."""

    def __init__(self, *, allow: Sequence[str], timeout: float = 5.0,
                 max_bytes: int = 10 * 1024 * 1024, cache_dir: Path | None = None,
                 clock: Clock = _now) -> None:
        self.names = frozenset(a.lower().rstrip(".") for a in allow
                               if _network(a) is None)
        self.networks: tuple[Network, ...] = tuple(n for a in allow
                                                   if (n := _network(a)) is not None)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.cache_dir = cache_dir
        self._clock = clock
        self._crls: dict[str, Crl] = {}
        self._ocsp: dict[str, CheckedOcspResponse] = {}
        self.fetches = 0  # network requests made (the cache answered the rest)

    # -- the decision ------------------------------------------------------------------
    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be fetched (None: it may)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            return f"scheme {parts.scheme or '(none)'}: only http(s) is fetched"
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            return "no host"
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if host in self.names:
                return None
            return f"host {host} is not on the policy's revocation allow list"
        if any(ip in n for n in self.networks):
            return None
        return f"address {ip} is not in the policy's revocation allow list"

    # -- CRLs --------------------------------------------------------------------------
    def crl(self, url: str) -> Crl:
        """The CRL at ``url``. Raises ``ConnectError`` (refused, unreachable, too big, slow)
        or ``ParseError`` (not a CRL)."""
        now = self._clock()
        hit = self._crls.get(url)
        if hit is not None and _fresh(hit.next_update, now):
            return hit
        cached = self._disk_read(url, "crl")
        if cached is not None:
            try:
                crl = Crl.from_bytes(cached, origin=url)
            except ParseError:
                crl = None
            if crl is not None and _fresh(crl.next_update, now):
                self._crls[url] = crl
                return crl
        data = self._get(url, None)
        crl = Crl.from_bytes(data, origin=url)
        self._crls[url] = crl
        self._disk_write(url, "crl", data)
        return crl

    # -- OCSP --------------------------------------------------------------------------
    def ocsp(self, url: str, cert: Certificate, issuer: Certificate) -> CheckedOcspResponse:
        """The verified OCSP answer about ``cert`` from ``url`` (see ``read_ocsp_response``)."""
        now = self._clock()
        request = ocsp_request(cert, issuer)
        key = url + "#" + hashlib.sha256(request).hexdigest()
        hit = self._ocsp.get(key)
        if hit is not None and _fresh(hit.next_update, now):
            return hit
        cached = self._disk_read(key, "ocsp")
        if cached is not None:
            try:
                answer = read_ocsp_response(cached, cert=cert, issuer=issuer, at=now,
                                            origin=url)
                self._ocsp[key] = answer
                return answer
            except ParseError:
                pass  # expired or damaged: ask again
        data = self._get(url, request)
        answer = read_ocsp_response(data, cert=cert, issuer=issuer, at=now, origin=url,
                                    source=RevocationSource.OCSP)
        self._ocsp[key] = answer
        if answer.next_update is not None:  # RFC 5019 §6: no nextUpdate, do not cache
            self._disk_write(key, "ocsp", data)
        return answer

    # -- transport ---------------------------------------------------------------------
    def _get(self, url: str, ocsp_body: bytes | None) -> bytes:
        why = self.refusal(url)
        if why is not None:
            raise ConnectError(url, f"not fetched: {why}")
        deadline = time.monotonic() + self.timeout
        self.fetches += 1
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False,
                              trust_env=False) as client:
                if ocsp_body is None:
                    stream = client.stream("GET", url)
                else:
                    stream = client.stream("POST", url, content=ocsp_body,
                                           headers={"Content-Type": "application/ocsp-request"})
                with stream as resp:
                    if resp.status_code != 200:
                        raise ConnectError(url, f"HTTP {resp.status_code}")
                    declared = resp.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > self.max_bytes:
                        raise ConnectError(url, f"{declared} bytes, over the {self.max_bytes} "
                                                "byte limit")
                    body = bytearray()
                    for chunk in resp.iter_bytes():
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise ConnectError(url, f"over the {self.max_bytes} byte limit")
                        if time.monotonic() > deadline:
                            raise ConnectError(url, f"took over {self.timeout:g}s")
                    return bytes(body)
        except httpx.HTTPError as exc:
            raise ConnectError(url, " ".join(str(exc).split())[:160] or type(exc).__name__
                               ) from None

    def _disk_path(self, key: str, kind: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()}.{kind}"

    def _disk_read(self, key: str, kind: str) -> bytes | None:
        path = self._disk_path(key, kind)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def _disk_write(self, key: str, kind: str, data: bytes) -> None:
        path = self._disk_path(key, kind)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written costs a refetch, nothing more


def _fresh(next_update: dt.datetime | None, now: dt.datetime) -> bool:
    return next_update is not None and now < next_update


def _network(entry: str) -> Network | None:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None
