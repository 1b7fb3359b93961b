"""Standard RDP Security: the server's certificate chain in the MCS Connect Response.

When an RDP server does not upgrade to TLS, it sends its X.509 chain inside the GCC Conference
Create Response, in the Server Security Data block (SC_SECURITY, MS-RDPBCGR 2.2.1.4.3 and
2.2.1.4.3.1 "X.509 certificate chain"). Zeek extracts it; so do we.
"""

from __future__ import annotations

import struct

_SC_SECURITY = b"\x02\x0c"
_CERT_CHAIN_VERSION_2 = 2  # X.509 chain (1 = proprietary RSA key blob, no certificate)
_MAX_BLOBS = 16  # a real chain has 2 or 3 blobs; a hostile count must not drive the loop


def find_rdp_certificates(buf: bytes) -> tuple[bytes, ...]:
    """The X.509 chain of a server's SC_SECURITY block in ``buf``, or ``()``."""
    if buf[:2] != b"\x03\x00":  # TPKT: this is RDP's X.224/MCS framing
        return ()
    i = buf.find(_SC_SECURITY)
    while i >= 0:
        certs = _parse_block(buf, i)
        if certs:
            return certs
        i = buf.find(_SC_SECURITY, i + 1)
    return ()


def _parse_block(b: bytes, i: int) -> tuple[bytes, ...]:
    try:
        _type, blen, method, level = struct.unpack_from("<HHII", b, i)
        end = i + blen
        if method == 0 or level == 0 or end > len(b):
            return ()
        rand_len, cert_len = struct.unpack_from("<II", b, i + 12)
        cert = i + 20 + rand_len
        if cert + cert_len > end or cert_len < 8:
            return ()
        version, count = struct.unpack_from("<II", b, cert)
        if version & 0x7FFFFFFF != _CERT_CHAIN_VERSION_2 or not 0 < count <= _MAX_BLOBS:
            return ()
        pos, out = cert + 8, []
        for _ in range(count):
            (n,) = struct.unpack_from("<I", b, pos)
            der = b[pos + 4:pos + 4 + n]
            if len(der) != n or not der.startswith(b"\x30\x82"):
                return ()
            out.append(der)
            pos += 4 + n
    except struct.error:
        return ()
    # The chain is sent root first; TLS order (leaf first) is what every reader expects.
    return tuple(reversed(out))
