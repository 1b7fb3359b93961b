"""The plaintext dialogues that come before TLS on STARTTLS services.

Each dialogue reads only what it needs, bounds every read by the caller's timeout (through
``asyncio.wait_for`` in the scanner) and line length, and raises ``Refused`` with what the
server said when it will not upgrade. ``sniff`` names the protocol from a banner, for
``--starttls auto`` on ports that are not the usual ones.
"""

from __future__ import annotations

import asyncio
import re
import struct

from certwarden.discovery.targets import Starttls
from certwarden.x509.der import DERError, header_size
from certwarden.x509.der import header as der_header

# A hostile or broken server must not make us buffer without end: real protocol lines are
# a few hundred bytes, and the longest real replies (capabilities) a few KB.
MAX_LINE = 4096
MAX_REPLY = 64 * 1024
CLIENT_NAME = "certwarden.invalid"


class Refused(Exception):  # noqa: N818 - an outcome, raised inside the scanner only
    """The server answered, but not with a yes to the upgrade."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _line(reader: asyncio.StreamReader) -> str:
    try:
        data = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise Refused("over-long reply line") from None
    if len(data) > MAX_LINE:
        raise Refused("over-long reply line")
    return data.decode("latin-1").rstrip("\r\n")


async def _reply(reader: asyncio.StreamReader) -> tuple[str, list[str]]:
    """An SMTP/FTP style reply: ``NNN-...`` continuation lines, then ``NNN ...``."""
    lines: list[str] = []
    while True:
        try:
            line = await _line(reader)
        except asyncio.IncompleteReadError as exc:
            raise Refused("connection closed during the dialogue" if not exc.partial
                          else f"unexpected reply {_show(exc.partial)}") from None
        lines.append(line)
        if len(lines) > 200:
            raise Refused("endless multi-line reply")
        if len(line) < 3 or not line[:3].isdigit():
            raise Refused(f"not a numeric reply: {_show(line)}")
        if len(line) == 3 or line[3] != "-":
            return line[:3], lines


def _show(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    text = " ".join(text.split())
    return repr(text[:80])


async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
    code, lines = await _reply(reader)
    if code != "220":
        raise Refused(f"SMTP greeting {_show(lines[-1])}")
    writer.write(f"EHLO {CLIENT_NAME}\r\n".encode())
    code, lines = await _reply(reader)
    if code != "250":
        raise Refused(f"SMTP EHLO refused: {_show(lines[-1])}")
    if not any(line[4:].strip().upper().startswith("STARTTLS") for line in lines):
        raise Refused("SMTP server does not offer STARTTLS")
    writer.write(b"STARTTLS\r\n")
    code, lines = await _reply(reader)
    if code != "220":
        raise Refused(f"SMTP STARTTLS refused: {_show(lines[-1])}")


async def ftp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
    code, lines = await _reply(reader)
    if code != "220":
        raise Refused(f"FTP greeting {_show(lines[-1])}")
    writer.write(b"AUTH TLS\r\n")
    code, lines = await _reply(reader)
    if code != "234":
        raise Refused(f"FTP AUTH TLS refused: {_show(lines[-1])}")


async def imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
    greeting = await _line(reader)
    if not greeting.startswith("* OK"):
        raise Refused(f"IMAP greeting {_show(greeting)}")
    writer.write(b"cw1 STARTTLS\r\n")
    for _ in range(100):
        line = await _line(reader)
        if line.startswith("cw1 "):
            if line[4:].upper().startswith("OK"):
                return
            raise Refused(f"IMAP STARTTLS refused: {_show(line)}")
    raise Refused("IMAP: no tagged reply to STARTTLS")


async def pop3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
    greeting = await _line(reader)
    if not greeting.startswith("+OK"):
        raise Refused(f"POP3 greeting {_show(greeting)}")
    writer.write(b"STLS\r\n")
    line = await _line(reader)
    if not line.startswith("+OK"):
        raise Refused(f"POP3 STLS refused: {_show(line)}")


# LDAPMessage { messageID 1, extendedReq [APPLICATION 23] { requestName [0] StartTLS OID } }
_LDAP_OID = b"1.3.6.1.4.1.1466.20037"
LDAP_STARTTLS = (b"\x30" + bytes([len(_LDAP_OID) + 7]) + b"\x02\x01\x01"
                 + b"\x77" + bytes([len(_LDAP_OID) + 2]) + b"\x80" + bytes([len(_LDAP_OID)])
                 + _LDAP_OID)


async def _ber(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(2)
    if head[0] != 0x30:
        raise Refused(f"LDAP: not an LDAPMessage ({head.hex()})")
    try:
        head += await reader.readexactly(header_size(head) - 2)
        _tag, _start, n = der_header(head)
    except DERError:
        raise Refused("LDAP: bad BER length") from None
    if n > MAX_REPLY:
        raise Refused("LDAP: reply too large")
    return await reader.readexactly(n)


async def ldap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
    writer.write(LDAP_STARTTLS)
    body = await _ber(reader)
    # messageID, then extendedResp [APPLICATION 24] whose first field is resultCode.
    idx = body.find(b"\x78")
    if idx < 0:
        raise Refused("LDAP: no extended response")
    try:
        _tag, start, _length = der_header(body, idx)
    except DERError:
        raise Refused("LDAP: malformed extended response") from None
    result = body[start : start + 3]
    if len(result) < 3 or result[0] != 0x0A:
        raise Refused("LDAP: malformed extended response")
    if result[2] != 0:
        raise Refused(f"LDAP StartTLS refused (resultCode {result[2]})")


async def xmpp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
    writer.write(("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' "
                  f"to='{_xml(host)}' version='1.0'>").encode())
    features = await _until(reader, b"</stream:features>", "XMPP stream features")
    if b"urn:ietf:params:xml:ns:xmpp-tls" not in features:
        raise Refused("XMPP server does not offer STARTTLS")
    writer.write(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    answer = await _until(reader, b">", "XMPP starttls answer")
    if b"<proceed" not in answer:
        raise Refused(f"XMPP STARTTLS refused: {_show(answer)}")


def _xml(text: str) -> str:
    return re.sub(r"[<>&'\"]", "", text)


async def _until(reader: asyncio.StreamReader, marker: bytes, what: str) -> bytes:
    data = b""
    while marker not in data:
        chunk = await reader.read(4096)
        if not chunk:
            raise Refused(f"connection closed before {what}")
        data += chunk
        if len(data) > MAX_REPLY:
            raise Refused(f"{what}: reply too large")
    return data


async def postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   host: str) -> None:
    writer.write(struct.pack("!ii", 8, 80877103))  # SSLRequest
    answer = await reader.readexactly(1)
    if answer != b"S":
        raise Refused("PostgreSQL server does not accept SSL" if answer == b"N"
                      else f"PostgreSQL: unexpected answer {answer!r}")


_MYSQL_CLIENT_SSL = 0x0800
_MYSQL_PROTOCOL_41 = 0x0200
_MYSQL_SECURE_CONNECTION = 0x8000


async def mysql(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
    head = await reader.readexactly(4)
    size = int.from_bytes(head[:3], "little")
    if size > MAX_REPLY:
        raise Refused("MySQL: greeting too large")
    body = await reader.readexactly(size)
    if body[:1] == b"\xff":
        raise Refused(f"MySQL error: {_show(body[9:])}")
    if body[:1] != b"\x0a":
        raise Refused(f"MySQL: unknown protocol version {body[:1].hex()}")
    end = body.find(b"\x00", 1)  # server version, NUL-terminated
    if end < 0 or len(body) < end + 1 + 4 + 9 + 2:
        raise Refused("MySQL: truncated greeting")
    caps = int.from_bytes(body[end + 1 + 4 + 9 : end + 1 + 4 + 9 + 2], "little")
    if not caps & _MYSQL_CLIENT_SSL:
        raise Refused("MySQL server does not offer SSL")
    flags = _MYSQL_CLIENT_SSL | _MYSQL_PROTOCOL_41 | _MYSQL_SECURE_CONNECTION
    payload = struct.pack("<IIB23x", flags, 1 << 24, 33)
    writer.write(len(payload).to_bytes(3, "little") + bytes([head[3] + 1]) + payload)


DIALOGUES = {
    Starttls.SMTP: smtp, Starttls.IMAP: imap, Starttls.POP3: pop3, Starttls.FTP: ftp,
    Starttls.LDAP: ldap, Starttls.XMPP: xmpp, Starttls.POSTGRES: postgres,
    Starttls.MYSQL: mysql,
}


def sniff(banner: bytes) -> Starttls | None:
    """The STARTTLS protocol a server-first banner announces, if any."""
    text = banner[:512].decode("latin-1")
    if text.startswith("* OK"):
        return Starttls.IMAP
    if text.startswith("+OK"):
        return Starttls.POP3
    if text.startswith("220"):
        first = text.split("\n", 1)[0].upper()
        return Starttls.FTP if "FTP" in first else Starttls.SMTP
    if len(banner) > 5 and banner[4:5] == b"\x0a" and banner[3:4] == b"\x00":
        return Starttls.MYSQL
    return None
