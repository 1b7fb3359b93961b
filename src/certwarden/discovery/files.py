"""The file sweep: certificates and keystores found by content, keys paired by public key.

Walks trees without following a directory symlink twice (loops end), never opens anything
but a regular file (a FIFO would block, a socket cannot be read), skips ``/proc``, ``/sys``
and ``/dev``, and reads nothing bigger than ``max_size``. A file is a candidate when its
bytes look like PEM, DER, JKS or base64 (the extension is only a hint for base64 text).

Pairing: a private key belongs to a certificate when their public keys match (SPKI pin).
An encrypted key is opened with the ``--password`` values, only to compute that pin; when it
cannot be opened it pairs by name (``server.key`` beside ``server.crt``), and a keystore's
key pairs with the keystore's first end-entity certificate.

A sighting is yielded as soon as its key is known; the others wait for the end of the walk
(their key may sit in another directory, like Debian's ``/etc/ssl/private``).
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from certwarden.errors import ParseError, PasswordError
from certwarden.records import KeyFile, Location, Outcome, OutcomeStatus, Sighting
from certwarden.x509 import Certificate, KeyInfo
from certwarden.x509.parse import parse_with_passwords

DEFAULT_MAX_SIZE = 16 * 1024 * 1024
PSEUDO_ROOTS = ("/proc", "/sys", "/dev")
HINT_EXTENSIONS = frozenset({".crt", ".cer", ".cert", ".der", ".pem", ".p7b", ".p7c", ".pfx",
                             ".p12", ".jks", ".keystore", ".truststore", ".b64"})
_JKS = (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Key:
    path: str
    info: KeyInfo
    pin: str | None
    mode: int
    owner: str


@dataclass(slots=True, kw_only=True)
class _Found:
    path: str
    certs: tuple[Certificate, ...]
    mode: int
    owner: str
    fmt: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepOptions:
    passwords: tuple[bytes, ...] = ()
    max_size: int = DEFAULT_MAX_SIZE


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _skip_root(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == p or real.startswith(p + "/") for p in PSEUDO_ROOTS)


def walk(roots: Sequence[str]) -> Iterator[tuple[str, os.stat_result] | Outcome]:
    """Regular files under ``roots`` (sorted, each inode once) or why one was passed over."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    stack = [os.path.abspath(r) for r in reversed(roots)]
    while stack:
        path = stack.pop()
        if _skip_root(path):
            continue
        try:
            st = os.stat(path)  # follows symlinks; a dangling one fails here
        except OSError as exc:
            if not os.path.islink(path):
                yield Outcome(location=path, status=OutcomeStatus.UNREADABLE,
                              reason=exc.strerror or "cannot stat")
            continue
        ident = (st.st_dev, st.st_ino)
        if stat.S_ISDIR(st.st_mode):
            if ident in seen_dirs:
                if os.path.islink(path):
                    yield Outcome(location=path, status=OutcomeStatus.LOOP,
                                  reason="directory already walked")
                continue
            seen_dirs.add(ident)
            try:
                names = sorted(os.listdir(path), reverse=True)
            except OSError as exc:
                yield Outcome(location=path, status=OutcomeStatus.UNREADABLE,
                              reason=exc.strerror or "cannot list")
                continue
            stack.extend(os.path.join(path, n) for n in names)
        elif stat.S_ISREG(st.st_mode) and ident not in seen_files:
            seen_files.add(ident)
            yield path, st


def _candidate(path: str, head: bytes) -> bool:
    if b"-----BEGIN " in head or head[:1] == b"\x30" or head[:4] in _JKS:
        return True
    return os.path.splitext(path)[1].lower() in HINT_EXTENSIONS


def _key_pin(pem: bytes, passwords: tuple[bytes, ...]) -> str | None:
    """The public-key pin of an encrypted PEM key, if one of ``passwords`` opens it."""
    from cryptography.hazmat.primitives import serialization

    from certwarden.x509.record import public_key_pin

    for pw in passwords:
        try:
            key = serialization.load_pem_private_key(pem, password=pw)
        except (ValueError, TypeError):
            continue
        return public_key_pin(key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    return None


def _read(path: str, st: os.stat_result, opts: SweepOptions,
          ) -> tuple[_Found | None, list[_Key], Outcome | None]:
    if st.st_size > opts.max_size:
        return None, [], Outcome(location=path, status=OutcomeStatus.TOO_LARGE,
                                 reason=f"{st.st_size} bytes > {opts.max_size}")
    try:
        with open(path, "rb") as fh:
            data = fh.read(opts.max_size + 1)
    except OSError as exc:
        return None, [], Outcome(location=path, status=OutcomeStatus.UNREADABLE,
                                 reason=exc.strerror or "cannot read")
    if not data or not _candidate(path, data[:4096]):
        return None, [], None
    mode, owner = stat.S_IMODE(st.st_mode), _owner(st.st_uid)
    try:
        parsed = parse_with_passwords(data, source=path, passwords=[*opts.passwords])
    except ParseError as err:
        if not _looks_like_container(path, data):
            return None, [], None  # a file that merely starts with 0x30 or "-----BEGIN "
        status = (OutcomeStatus.NEEDS_PASSWORD if isinstance(err, PasswordError)
                  else OutcomeStatus.BROKEN)
        return None, [], Outcome(location=path, status=status, reason=err.reason)
    keys = []
    for info in parsed.keys:
        pin = info.spki_sha256
        if pin is None and info.encrypted and opts.passwords and b"-----BEGIN" in data:
            pin = _key_pin(data, opts.passwords)
        keys.append(_Key(path=path, info=info, pin=pin, mode=mode, owner=owner))
    found = (_Found(path=path, certs=parsed.certificates, mode=mode, owner=owner,
                    fmt=str(parsed.format)) if parsed.certificates else None)
    return found, keys, None


def _looks_like_container(path: str, data: bytes) -> bool:
    head = data[:4096]
    return (b"-----BEGIN CERTIFICATE" in head or b"-----BEGIN PKCS7" in head
            or head[:4] in _JKS or os.path.splitext(path)[1].lower() in HINT_EXTENSIONS)


def _stem(path: str) -> str:
    return os.path.splitext(path)[0]


class _Pairing:
    def __init__(self) -> None:
        self.by_pin: dict[str, _Key] = {}
        self.by_stem: dict[str, _Key] = {}
        self.used: set[int] = set()
        self.pins: set[str] = set()  # public keys of every certificate emitted
        self.all: list[_Key] = []

    def add(self, key: _Key) -> None:
        self.all.append(key)
        if key.pin:
            self.by_pin.setdefault(key.pin, key)
        else:
            self.by_stem.setdefault(_stem(key.path), key)

    def match(self, found: _Found, pos: int, cert: Certificate, own: list[_Key]) -> _Key | None:
        pin = cert.spki_sha256
        if pin:
            self.pins.add(pin)
        # The key in the same file or keystore first, then one found anywhere else.
        key = next((k for k in own if pin and k.pin == pin), None)
        if key is None and pin:
            key = self.by_pin.get(pin)
        if key is None and pos == 0 and not cert.is_ca:
            blind = [k for k in own if k.pin is None]  # keystore key, or encrypted beside
            key = blind[0] if blind else self.by_stem.get(_stem(found.path))
        if key is not None:
            self.used.add(id(key))
        return key

    def orphans(self) -> list[_Key]:
        return [k for k in self.all
                if id(k) not in self.used and not (k.pin and k.pin in self.pins)]


def sweep(roots: Sequence[str], options: SweepOptions | None = None,
          ) -> Iterator[Sighting | Outcome]:
    """Every certificate under ``roots`` as a ``Sighting``; every problem as an outcome."""
    opts = options or SweepOptions()
    now = dt.datetime.now(dt.UTC)
    pairing = _Pairing()
    waiting: list[tuple[_Found, list[_Key]]] = []
    for item in walk(roots):
        if isinstance(item, Outcome):
            yield item
            continue
        path, st = item
        found, keys, outcome = _read(path, st, opts)
        if outcome is not None:
            yield outcome
        for key in keys:
            pairing.add(key)
        if found is None:
            continue
        if pairing.by_pin.get(found.certs[0].spki_sha256):
            yield from _emit(found, keys, pairing, now)
            yield Outcome(location=path, status=OutcomeStatus.OK, reason=found.fmt)
        else:
            waiting.append((found, keys))
    for found, keys in waiting:
        yield from _emit(found, keys, pairing, now)
        yield Outcome(location=found.path, status=OutcomeStatus.OK, reason=found.fmt)
    for key in pairing.orphans():
        yield Outcome(location=key.path, status=OutcomeStatus.ORPHAN_KEY,
                      reason="encrypted" if key.info.encrypted else "unencrypted")


def _emit(found: _Found, own: list[_Key], pairing: _Pairing,
          now: dt.datetime) -> Iterator[Sighting]:
    loc = Location.file(found.path)
    for pos, cert in enumerate(found.certs):
        key = pairing.match(found, pos, cert, own)
        key_file = None
        if key is not None:
            key_file = KeyFile(path=key.path, encrypted=key.info.encrypted, mode=key.mode,
                               owner=key.owner)
        yield Sighting(certificate=cert, location=loc, seen_at=now, position=pos,
                       file_mode=found.mode, file_owner=found.owner, key=key_file,
                       extra={"format": found.fmt})


def key_problems(key: KeyFile) -> list[str]:
    """What is wrong with how a private key is kept (for listings)."""
    out = []
    if not key.encrypted:
        out.append("unencrypted")
    if key.mode is not None and key.mode & 0o077:
        who = "world" if key.mode & 0o007 else "group"
        out.append(f"{who}-readable ({key.mode:04o})")
    return out
