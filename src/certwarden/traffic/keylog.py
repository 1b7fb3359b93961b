"""TLS 1.3 handshake decryption with a key log embedded in the capture (pcapng Decryption
Secrets Block, as ``editcap --inject-secrets`` writes it).

With ``CLIENT_/SERVER_HANDSHAKE_TRAFFIC_SECRET`` for a session's client random, the encrypted
handshake records (EncryptedExtensions, Certificate, CertificateVerify, Finished) can be read,
so a TLS 1.3 capture that carries its secrets yields its certificate chain. Application data
keys are never derived: only the handshake is read.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

KeyLog = dict[bytes, dict[str, bytes]]  # client random -> label -> secret
TLS_KEYLOG = 0x544C534B  # DSB secrets type "TLSK"

# TLS 1.3 suite -> (hash, key length, AEAD)
_SUITES: dict[int, tuple[str, int, Callable[[bytes], AESGCM | AESCCM | ChaCha20Poly1305]]] = {
    0x1301: ("sha256", 16, AESGCM),
    0x1302: ("sha384", 32, AESGCM),
    0x1303: ("sha256", 32, ChaCha20Poly1305),
    0x1304: ("sha256", 16, AESCCM),
}


def parse_keylog(data: bytes, into: KeyLog) -> None:
    """NSS key log lines (``LABEL <client_random hex> <secret hex>``); others are ignored."""
    for line in data.splitlines():
        parts = line.strip().split()
        if len(parts) != 3 or parts[0].startswith(b"#"):
            continue
        try:
            random, secret = bytes.fromhex(parts[1].decode()), bytes.fromhex(parts[2].decode())
        except ValueError:
            continue
        into.setdefault(random, {})[parts[0].decode("ascii", "replace")] = secret


def expand_label(secret: bytes, label: bytes, length: int, hashname: str) -> bytes:
    """HKDF-Expand-Label of TLS 1.3 (RFC 8446 §7.1) with an empty context; QUIC uses it too."""
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), hashname).digest()
        out += block
        i += 1
    return out[:length]


class HandshakeDecryptor:
    """Decrypts one direction's records under its handshake traffic secret (sequence from 0).
    Returns the inner plaintext and content type, or ``None`` once the key no longer fits."""

    __slots__ = ("aead", "iv", "seq")

    def __init__(self, secret: bytes, suite: int) -> None:
        hashname, keylen, aead = _SUITES[suite]
        self.aead = aead(expand_label(secret, b"key", keylen, hashname))
        self.iv = expand_label(secret, b"iv", 12, hashname)
        self.seq = 0

    def __call__(self, header: bytes, body: bytes) -> tuple[int, bytes] | None:
        nonce = bytes(a ^ b for a, b in zip(self.iv, self.seq.to_bytes(12, "big"), strict=True))
        try:
            plain = self.aead.decrypt(nonce, body, header)
        except (InvalidTag, ValueError):
            return None
        self.seq += 1
        inner = plain.rstrip(b"\x00")
        if not inner:
            return None
        return inner[-1], inner[:-1]


def decryptor(keylog: KeyLog, client_random: bytes, suite: int,
              label: str) -> HandshakeDecryptor | None:
    secret = keylog.get(client_random, {}).get(label)
    if secret is None or suite not in _SUITES:
        return None
    return HandshakeDecryptor(secret, suite)
