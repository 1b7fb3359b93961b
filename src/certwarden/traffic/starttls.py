"""Name the protocol that upgraded to TLS from the plaintext seen before the first TLS record.

Detection of TLS itself is by content (``stream.find_tls_start``); this only labels it, so an
unknown preface still yields the session, labelled ``"unknown"``.
"""

from __future__ import annotations

# (label, client-preface marker, server-preface marker); markers are matched case-insensitively
# except the binary ones, which are matched exactly.
_TEXT_MARKERS = (
    ("smtp", b"starttls", b"esmtp"),
    ("imap", b"starttls", b"* ok"),
    ("pop3", b"stls", b"+ok"),
    ("ftp", b"auth tls", b"220"),
    ("ftp-gsi", b"auth gssapi", b"220"),
    ("ftp", b"auth ssl", b"220"),
    ("xmpp", b"<starttls", b"<stream:stream"),
    ("irc", b"starttls", b"notice"),
)
_LDAP_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
_PG_SSLREQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"


def classify(client_preface: bytes, server_preface: bytes) -> str | None:
    """``None`` when TLS started at byte 0 on both sides (plain TLS), else a protocol label."""
    if not client_preface and not server_preface:
        return None
    c, s = client_preface.lower(), server_preface.lower()
    if _LDAP_STARTTLS_OID in client_preface:
        return "ldap"
    if client_preface.startswith(_PG_SSLREQUEST):
        return "postgresql"
    if client_preface[:2] == b"\x03\x00" or server_preface[:2] == b"\x03\x00":
        return "rdp"  # TPKT header of X.224 connection request/confirm
    if len(server_preface) > 5 and server_preface[3] == 0 and server_preface[4] == 0x0A:
        return "mysql"  # protocol-10 greeting, sequence id 0
    for label, cmark, smark in _TEXT_MARKERS:
        if cmark in c and (smark in s or label in ("smtp", "imap", "irc")):
            if label == "smtp" and not (c.startswith((b"ehlo", b"helo")) or b"smtp" in s
                                        or s.startswith(b"220")):
                continue
            if label == "imap" and b"* ok" not in s and b"imap" not in s:
                continue
            if label == "irc" and not (b" 670 " in s or b"notice" in s or b"cap " in c):
                continue
            return label
    if b"<stream:stream" in c or b"jabber:" in c:
        return "xmpp"
    return "unknown"
