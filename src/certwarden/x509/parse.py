"""Reading certificates (and the keys beside them) from any container, detected by content.

Formats: PEM (many blocks, text around them), DER, base64 DER, PKCS#7 (PEM or DER),
PKCS#12, JKS and JCEKS. The file name never decides the format: a ``.crt`` that holds
PKCS#12 is read as PKCS#12.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certwarden.errors import ParseError, PasswordError
from certwarden.x509.der import DERError
from certwarden.x509.der import header as der_header
from certwarden.x509.record import Certificate, public_key_pin

# A certificate store bigger than this is not something we should slurp: say so instead.
MAX_INPUT_BYTES = 64 * 1024 * 1024

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)-----END \1-----", re.DOTALL)
_B64_TEXT = re.compile(rb"^[A-Za-z0-9+/=\s]+$")
_JKS_MAGIC = b"\xfe\xed\xfe\xed"
_JCEKS_MAGIC = b"\xce\xce\xce\xce"
_OID_PKCS7_SIGNED = bytes.fromhex("06092a864886f70d010702")
_OID_PKCS7_DATA = bytes.fromhex("06092a864886f70d010701")


class Format(StrEnum):
    PEM = "pem"
    DER = "der"
    BASE64_DER = "base64-der"
    PKCS7 = "pkcs7"
    PKCS12 = "pkcs12"
    JKS = "jks"
    JCEKS = "jceks"


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyInfo:
    """A private key found in a source. The key itself is never kept, only facts about it."""

    encrypted: bool
    spki_sha256: str | None  # pin of the matching public key; None while encrypted
    key_type: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    source: str
    format: Format
    certificates: tuple[Certificate, ...]
    keys: tuple[KeyInfo, ...] = ()
    problems: tuple[str, ...] = ()  # blocks skipped, with why


def parse_bytes(data: bytes, *, source: str = "<bytes>", password: bytes | None = None) -> Parsed:
    """Read every certificate in ``data``. Raises ``ParseError`` if there is none."""
    if not data or not data.strip():
        raise ParseError(source, "empty input")
    if len(data) > MAX_INPUT_BYTES:
        raise ParseError(source, f"larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB; "
                                 "not a certificate store we read")
    head = data[:4]
    if head == _JKS_MAGIC:
        return _keystore(data, source, password, Format.JKS)
    if head == _JCEKS_MAGIC:
        return _keystore(data, source, password, Format.JCEKS)
    if b"-----BEGIN " in data:
        return _pem(data, source, password)
    if data[:1] == b"\x30":
        return _der_container(data, source, password)
    stripped = data.strip()
    if _B64_TEXT.match(stripped[:4096]):
        try:
            raw = base64.b64decode(b"".join(stripped.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ParseError(source, "looks like base64 but does not decode") from None
        if raw[:1] == b"\x30":
            parsed = _der_container(raw, source, password)
            fmt = Format.BASE64_DER if parsed.format == Format.DER else parsed.format
            return Parsed(source=source, format=fmt, certificates=parsed.certificates,
                          keys=parsed.keys, problems=parsed.problems)
    raise ParseError(source, "no certificate found (not PEM, DER, PKCS#7, PKCS#12 or JKS)")


def parse_with_passwords(data: bytes, *, source: str,
                         passwords: Sequence[bytes | None]) -> Parsed:
    """``parse_bytes`` trying each password in turn (a sweep knows several candidates).

    A wrong password moves on to the next; any other error ends the tries at once. The last
    error is raised when none worked (a ``PasswordError`` when only passwords were wrong).
    """
    err: ParseError | None = None
    for pw in passwords or [None]:
        try:
            return parse_bytes(data, source=source, password=pw)
        except PasswordError as exc:
            err = exc
        except ParseError:
            raise
    assert err is not None  # the loop ran at least once and only PasswordError continues
    raise err


def _pem(data: bytes, source: str, password: bytes | None) -> Parsed:
    certs: list[Certificate] = []
    keys: list[KeyInfo] = []
    problems: list[tuple[str, str]] = []  # (which block, why it was skipped)
    for n, m in enumerate(_PEM_BLOCK.finditer(data), start=1):
        label = m.group(1).decode()
        where = f"{source} (PEM block {n}, {label})"
        try:
            if label in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
                der = _b64(m.group(2), where)
                if label == "TRUSTED CERTIFICATE":
                    # OpenSSL's trusted form appends trust settings after the certificate.
                    der = der[: _total_length(der, where)]
                certs.append(Certificate.from_der(der, source=where))
            elif label in ("PKCS7", "CMS"):
                certs.extend(_pkcs7_der(_b64(m.group(2), where), where))
            elif label.endswith("PRIVATE KEY"):
                keys.append(_key_info(m.group(0), label, password))
        except ParseError as exc:
            problems.append((f"PEM block {n}", exc.reason))
    if not certs:
        if problems:
            block, reason = problems[0]
            raise ParseError(source, f"{block}: {reason}")
        if keys:
            return Parsed(source=source, format=Format.PEM, certificates=(), keys=tuple(keys))
        raise ParseError(source, "PEM without a certificate block (or a truncated one)")
    return Parsed(source=source, format=Format.PEM, certificates=tuple(certs), keys=tuple(keys),
                  problems=tuple(f"{block}: {reason}" for block, reason in problems))


def _b64(body: bytes, where: str) -> bytes:
    # Headers such as "Proc-Type:" belong to encrypted keys, never to certificates.
    lines = [ln for ln in body.split(b"\n") if b":" not in ln]
    try:
        return base64.b64decode(b"".join(b"".join(lines).split()), validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(where, "bad base64 in PEM block") from None


def _total_length(data: bytes, where: str) -> int:
    """Total length of the outer DER TLV, so trailing bytes can be cut or detected."""
    if len(data) < 2 or data[0] != 0x30:
        raise ParseError(where, "not a DER SEQUENCE")
    try:
        _tag, start, length = der_header(data)
    except DERError:
        raise ParseError(where, "bad DER length") from None
    return start + length


def _der_container(data: bytes, source: str, password: bytes | None) -> Parsed:
    total = _total_length(data, source)
    if total > len(data):
        raise ParseError(source, f"truncated DER: header says {total} bytes, have {len(data)}")
    head = data[:64]
    if _OID_PKCS7_SIGNED in head:
        return Parsed(source=source, format=Format.PKCS7,
                      certificates=tuple(_pkcs7_der(data[:total], source)))
    if _OID_PKCS7_DATA in head and _looks_like_pfx(data):
        return _pkcs12(data[:total], source, password)
    try:
        cert = Certificate.from_der(data[:total], source=source)
    except ParseError:
        if _looks_like_pfx(data):
            return _pkcs12(data[:total], source, password)
        raise
    return Parsed(source=source, format=Format.DER, certificates=(cert,))


def _looks_like_pfx(data: bytes) -> bool:
    # PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, ... }
    try:
        _tag, start, _length = der_header(data)
    except DERError:
        return False
    return data[start : start + 3] == b"\x02\x01\x03"


def _pkcs7_der(der: bytes, where: str) -> list[Certificate]:
    try:
        with warnings.catch_warnings():
            # openssl crl2pkcs7 writes its SET OF unsorted (BER, not DER); cryptography reads it
            # and warns. Reading what the most common tool writes is the point here.
            warnings.simplefilter("ignore", UserWarning)
            loaded = pkcs7.load_der_pkcs7_certificates(der)
    except (ValueError, TypeError) as exc:
        raise ParseError(where, f"unreadable PKCS#7 ({exc})") from None
    return [_from_crypto(c, where) for c in loaded]


def _from_crypto(cert: cx509.Certificate, where: str) -> Certificate:
    return Certificate.from_der(cert.public_bytes(serialization.Encoding.DER), source=where)


def _pkcs12(der: bytes, source: str, password: bytes | None) -> Parsed:
    tried = [password] if password is not None else [None, b""]
    last: Exception | None = None
    for pw in tried:
        try:
            p12 = pkcs12.load_pkcs12(der, pw)
            break
        except ValueError as exc:
            last = exc
    else:
        reason = " ".join(str(last).split()) if last else "unreadable"
        if "password" in reason.lower() or "mac" in reason.lower() or password is None:
            hint = "wrong password" if password is not None else "needs a password (--password)"
            raise PasswordError(source, f"PKCS#12: {hint}")
        raise ParseError(source, f"unreadable PKCS#12 ({reason})")
    certs: list[Certificate] = []
    keys: list[KeyInfo] = []
    if p12.cert is not None:
        certs.append(_from_crypto(p12.cert.certificate, source))
    certs.extend(_from_crypto(c.certificate, source) for c in p12.additional_certs)
    if p12.key is not None:
        spki = p12.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        # Inside a password-protected container: "encrypted" unless the password is empty.
        keys.append(KeyInfo(encrypted=bool(password), spki_sha256=public_key_pin(spki),
                            key_type=type(p12.key).__name__.replace("PrivateKey", "").lower()))
    return Parsed(source=source, format=Format.PKCS12, certificates=tuple(certs), keys=tuple(keys))


def _keystore(data: bytes, source: str, password: bytes | None, fmt: Format) -> Parsed:
    import jks  # pyjks: imported lazily, it pulls in pure-Python crypto at import time

    pw = (password or b"changeit").decode("utf-8", "replace")
    try:
        store: Any = jks.KeyStore.loads(data, pw, try_decrypt_keys=False)
    except jks.util.KeystoreSignatureException:
        raise PasswordError(source, f"{fmt.value.upper()}: wrong password (--password)") from None
    except Exception as exc:  # pyjks lets struct/index/type errors escape on hostile bytes
        raise ParseError(source, f"unreadable {fmt.value.upper()} ({_one_line(exc)})") from None
    certs: list[Certificate] = []
    keys: list[KeyInfo] = []
    for alias, entry in sorted(store.certs.items()):
        certs.append(Certificate.from_der(entry.cert, source=f"{source}#{alias}"))
    for alias, entry in sorted(store.private_keys.items()):
        certs.extend(Certificate.from_der(der, source=f"{source}#{alias}")
                     for _type, der in entry.cert_chain)
        keys.append(KeyInfo(encrypted=True, spki_sha256=None, key_type=None))
    if not certs:
        raise ParseError(source, f"{fmt.value.upper()} holds no certificate")
    return Parsed(source=source, format=fmt, certificates=tuple(certs), keys=tuple(keys))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160] if text else type(exc).__name__


def _key_info(pem_block: bytes, label: str, password: bytes | None) -> KeyInfo:
    if label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in pem_block:
        return KeyInfo(encrypted=True, spki_sha256=None, key_type=None)
    try:
        key = serialization.load_pem_private_key(pem_block, password=None)
    except (ValueError, TypeError, Exception):
        return KeyInfo(encrypted=False, spki_sha256=None, key_type=None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyInfo(encrypted=False, spki_sha256=public_key_pin(spki),
                   key_type=type(key).__name__.replace("PrivateKey", "").lstrip("_").lower())


# --- sources: files, directories, stdin ------------------------------------------------

def read_source(path: str, *, password: bytes | None = None) -> Parsed:
    """Read one file (or ``-`` for stdin)."""
    if path == "-":
        return parse_bytes(_read_stdin(), source="<stdin>", password=password)
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise ParseError(path, exc.strerror or "cannot read") from None
    if stat.S_ISDIR(st.st_mode):
        raise ParseError(path, "is a directory (use iter_sources)")
    if st.st_size > MAX_INPUT_BYTES:
        raise ParseError(path, f"larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB; "
                               "not a certificate store we read")
    data = read_limited(path, MAX_INPUT_BYTES, what="a certificate store we read")
    return parse_bytes(data, source=path, password=password)


def read_limited(path: str, limit: int, *, what: str = "an input we read") -> bytes:
    """At most ``limit`` bytes of ``path``: a device (``/dev/zero``) or a pipe that never ends
    is refused at the limit rather than read until memory runs out."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ParseError(path, exc.strerror or "cannot read") from None
    if len(data) > limit:
        raise ParseError(path, f"larger than {_size(limit)}; not {what}")
    return data


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def _read_stdin() -> bytes:
    data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise ParseError("<stdin>", f"larger than {_size(MAX_INPUT_BYTES)}; "
                                    "not a certificate store we read")
    return data


def iter_files(root: str) -> Iterator[str]:
    """Every regular file under ``root`` (or ``root`` itself), sorted, symlinks not followed."""
    if root == "-" or not os.path.isdir(root):
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                yield full


def iter_sources(paths: list[str], *, password: bytes | None = None,
                 ) -> Iterator[Parsed | ParseError]:
    """Each file's result or its error: one bad file never ends a batch."""
    for root in paths:
        for path in iter_files(root):
            try:
                yield read_source(path, password=password)
            except ParseError as exc:
                yield exc
