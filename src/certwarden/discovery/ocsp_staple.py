"""Asking a server for its stapled OCSP response (RFC 6066 §8 status_request).

Python's ``ssl`` cannot request or return a stapled response, so this sends its own TLS 1.2
ClientHello with ``status_request`` and reads the server's first flight in the clear:
ServerHello, Certificate, CertificateStatus, up to ServerHelloDone; then it hangs up
without finishing the handshake (nothing is encrypted, nothing is sent after the hello).
TLS 1.3 puts the status inside the encrypted Certificate message; offering only TLS 1.2
keeps it readable, and a server that refuses 1.2 simply yields no staple.
"""

from __future__ import annotations

import contextlib
import socket
import struct

MAX_FLIGHT = 256 * 1024  # a first flight with a long chain and a staple is a few tens of KB

# ECDHE and plain-RSA suites with AES-GCM, ChaCha20, AES-CBC and 3DES: what TLS 1.2 servers
# of every age accept (only the hello is exchanged, so the choice protects nothing).
_SUITES = bytes.fromhex("c02bc02fc02cc030cca9cca8c009c013c00ac014009c009d002f0035000a")
_SIGALGS = bytes.fromhex("040305030603080408050806040105010601020102030203")
_GROUPS = bytes.fromhex("001d001700180019")
_HANDSHAKE, _ALERT = 22, 21
_SERVER_HELLO_DONE, _CERTIFICATE_STATUS = 14, 22


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def client_hello(sni: str | None) -> bytes:
    exts = b""
    if sni:
        name = sni.encode("idna")
        entry = b"\x00" + struct.pack("!H", len(name)) + name
        exts += _ext(0x0000, struct.pack("!H", len(entry)) + entry)
    exts += _ext(0x0005, b"\x01\x00\x00\x00\x00")  # status_request: ocsp, no ids, no exts
    exts += _ext(0x000A, struct.pack("!H", len(_GROUPS)) + _GROUPS)
    exts += _ext(0x000B, b"\x01\x00")  # ec_point_formats: uncompressed
    exts += _ext(0x000D, struct.pack("!H", len(_SIGALGS)) + _SIGALGS)
    exts += _ext(0xFF01, b"\x00")  # renegotiation_info (empty)
    body = (b"\x03\x03" + bytes(32) + b"\x00" + struct.pack("!H", len(_SUITES)) + _SUITES
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def read_staple(flight: bytes) -> bytes | None:
    """The OCSPResponse DER in a server's first flight, or None (no staple, an alert, junk)."""
    stream = bytearray()
    i = 0
    while i + 5 <= len(flight):
        kind, length = flight[i], struct.unpack("!H", flight[i + 3:i + 5])[0]
        if kind != _HANDSHAKE:
            return None  # an alert, or anything else: no staple to be had
        stream += flight[i + 5:i + 5 + length]
        i += 5 + length
    j = 0
    while j + 4 <= len(stream):
        msg, length = stream[j], int.from_bytes(stream[j + 1:j + 4], "big")
        body = bytes(stream[j + 4:j + 4 + length])
        if len(body) < length:
            return None  # truncated
        if msg == _CERTIFICATE_STATUS and len(body) >= 4 and body[0] == 1:
            size = int.from_bytes(body[1:4], "big")
            return body[4:4 + size] if size and len(body) >= 4 + size else None
        if msg == _SERVER_HELLO_DONE:
            return None
        j += 4 + length
    return None


def _flight_complete(data: bytes) -> bool:
    """Has the server sent ServerHelloDone (or an alert)? Scans the records received."""
    stream = bytearray()
    i = 0
    while i + 5 <= len(data):
        kind, length = data[i], struct.unpack("!H", data[i + 3:i + 5])[0]
        if kind == _ALERT:
            return True
        if i + 5 + length > len(data):
            break
        stream += data[i + 5:i + 5 + length]
        i += 5 + length
    j = 0
    while j + 4 <= len(stream):
        msg, length = stream[j], int.from_bytes(stream[j + 1:j + 4], "big")
        if msg == _SERVER_HELLO_DONE:
            return True
        j += 4 + length
    return False


def fetch_staple(host: str, port: int, *, sni: str | None, timeout: float) -> bytes | None:
    """The server's stapled OCSP response, or None. Never raises on network trouble: a
    staple that cannot be had is an absent staple (the scan itself recorded the endpoint)."""
    data = b""
    with contextlib.suppress(OSError), \
            socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(client_hello(sni))
        while len(data) < MAX_FLIGHT and not _flight_complete(data):
            chunk = sock.recv(16384)
            if not chunk:
                break
            data += chunk
    return read_staple(data)
