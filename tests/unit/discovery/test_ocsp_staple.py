"""The stapled-OCSP reader on hand-made first flights (the live one: tests/peer)."""

from __future__ import annotations

import struct

from certwarden.discovery.ocsp_staple import client_hello, read_staple


def _record(*messages: tuple[int, bytes]) -> bytes:
    hs = b"".join(bytes([t]) + len(b).to_bytes(3, "big") + b for t, b in messages)
    return b"\x16\x03\x03" + struct.pack("!H", len(hs)) + hs


def test_the_status_message_is_read_across_records() -> None:
    ocsp = b"\x30\x03\x0a\x01\x00"  # any bytes: the reader returns them, the caller checks
    status = b"\x01" + len(ocsp).to_bytes(3, "big") + ocsp
    flight = _record((2, b"hello"), (11, b"chain")) + _record((22, status), (14, b""))
    assert read_staple(flight) == ocsp


def test_no_staple_alert_or_truncation_is_none() -> None:
    assert read_staple(_record((2, b"hello"), (11, b"chain"), (14, b""))) is None
    assert read_staple(b"\x15\x03\x03\x00\x02\x02\x28") is None  # handshake_failure alert
    assert read_staple(_record((22, b"\x01\x00\x00\x09abc"))) is None  # claims 9, has 3
    assert read_staple(b"") is None


def test_client_hello_offers_status_request_and_sni() -> None:
    hello = client_hello("app.example.test")
    assert hello[:3] == b"\x16\x03\x01"
    assert b"\x00\x05\x00\x05\x01\x00\x00\x00\x00" in hello  # status_request, OCSP
    assert b"app.example.test" in hello
    assert b"app.example.test" not in client_hello(None)
