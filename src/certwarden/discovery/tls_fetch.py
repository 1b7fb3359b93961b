"""One blocking TLS handshake that returns the chain the server presented.

Verification is off on purpose: an inventory must see the bad certificates too.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from dataclasses import dataclass

from certwarden.errors import ConnectError


@dataclass(frozen=True, slots=True, kw_only=True)
class Handshake:
    target: str
    chain: tuple[bytes, ...]  # DER, leaf first, as presented
    tls_version: str | None
    cipher: str | None
    alpn: str | None


def scanner_context(alpn: tuple[str, ...] = ("h2", "http/1.1")) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with contextlib.suppress(ssl.SSLError):
        # Old servers still run; seeing their certificate matters more than their cipher.
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def presented_chain(sock: ssl.SSLSocket | ssl.SSLObject) -> tuple[bytes, ...]:
    """The whole chain as sent. Python 3.13 has a public method; 3.11/3.12 a private one."""
    getter = getattr(sock, "get_unverified_chain", None)
    if getter is None:
        inner = getattr(sock, "_sslobj", sock)
        getter = getattr(inner, "get_unverified_chain", None)
    if getter is not None:
        chain = getter() or []
        out = []
        for c in chain:
            out.append(c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
        if out:
            return tuple(out)
    leaf = sock.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


def split_target(target: str, default_port: int = 443) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``host`` -> (host, port)."""
    host, port = target, default_port
    if target.startswith("["):
        end = target.find("]")
        if end < 0:
            raise ConnectError(target, "unclosed [ in IPv6 address")
        host, rest = target[1:end], target[end + 1 :]
        if rest.startswith(":"):
            port = _port(target, rest[1:])
    elif target.count(":") == 1:
        host, p = target.split(":")
        port = _port(target, p)
    if not host:
        raise ConnectError(target, "no host")
    return host, port


def _port(target: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConnectError(target, f"bad port {text!r}")
    return int(text)


def fetch_chain(host: str, port: int, *, sni: str | None = None,
                timeout: float = 10.0) -> Handshake:
    target = f"{host}:{port}"
    ctx = scanner_context()
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=sni or _sni_for(host)) as tls:
            cipher = tls.cipher()
            return Handshake(target=target, chain=presented_chain(tls), tls_version=tls.version(),
                             cipher=cipher[0] if cipher else None,
                             alpn=tls.selected_alpn_protocol())
    except (ssl.SSLError, OSError) as exc:
        raise ConnectError(target, _reason(exc)) from None


def _sni_for(host: str) -> str | None:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None  # RFC 6066: no IP literals in SNI


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__
