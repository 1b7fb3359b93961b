"""Making certificates with safe defaults: self-signed, a local development CA (like mkcert),
leaves from it, and CSRs.

Defaults: ECDSA P-256, SANs always (IP literals become IP SANs), CA:FALSE with KU/EKU on
leaves, SKI/AKI, 90 days for development certificates, private keys written mode 0600.
Keys, hashes, serials and the back-date come from ``x509.keys``, as the CA's do.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certwarden.errors import ParseError, UsageError
from certwarden.x509.keys import (
    BACKDATE,
    PRIVATE_KEY_TYPES,
    KeyAlgorithm,
    PrivateKey,
    generate_private_key,
    hash_for,
    key_pem,
    random_serial,
)
from certwarden.x509.record import Certificate

DEV_VALIDITY_DAYS = 90
DEV_CA_VALIDITY_DAYS = 10 * 365  # a dev CA outlives its leaves; still far from "never"


@dataclass(frozen=True, slots=True)
class CertifiedKey:
    """A certificate just made, with its key (kept in memory only until written)."""

    certificate: Certificate
    key: PrivateKey

    def key_pem(self, passphrase: bytes | None = None) -> bytes:
        return key_pem(self.key, passphrase)

    def __repr__(self) -> str:  # never show key material
        return f"CertifiedKey(certificate={self.certificate.subject!r}, key=<hidden>)"


def split_names(names: Sequence[str]) -> tuple[list[cx509.GeneralName], str]:
    """SAN entries for ``names`` (IP literals as IP SANs) and the CN to use."""
    if not names:
        raise UsageError("at least one name (DNS name or IP address) is required")
    sans: list[cx509.GeneralName] = []
    for name in names:
        try:
            sans.append(cx509.IPAddress(ipaddress.ip_address(name.strip("[]"))))
            continue
        except ValueError:
            pass
        if not _valid_dns(name):
            raise UsageError(f"not a DNS name or IP address: {name!r}")
        sans.append(cx509.DNSName(name.lower()))
    return sans, names[0]


def _valid_dns(name: str) -> bool:
    if not name or len(name) > 253 or name.startswith(".") or ".." in name:
        return False
    labels = name.rstrip(".").split(".")
    for i, label in enumerate(labels):
        if label == "*" and i == 0 and len(labels) > 2:
            continue
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c.isalnum() or c in "-_" for c in label) or not label.isascii():
            return False
    return True


def _name(cn: str, org: str | None = None) -> cx509.Name:
    if not cn.strip():
        raise UsageError("the certificate's name (CN) cannot be empty")
    attrs = [cx509.NameAttribute(NameOID.COMMON_NAME, cn[:64])]
    if org:
        attrs.append(cx509.NameAttribute(NameOID.ORGANIZATION_NAME, org[:64]))
    return cx509.Name(attrs)


def _window(days: int, now: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    if days <= 0:
        raise UsageError(f"validity must be at least one day, not {days}")
    start = (now or dt.datetime.now(dt.UTC)) - BACKDATE
    try:
        end = start + BACKDATE + dt.timedelta(days=days)
    except OverflowError:
        end = None
    if end is None or end.year > 9999 - 1:  # GeneralizedTime stops at 9999; keep a year spare
        raise UsageError(f"validity of {days} days ends after the year 9998")
    return start, end


def _leaf_extensions(builder: cx509.CertificateBuilder, key: PrivateKey,
                     sans: list[cx509.GeneralName], *, client: bool) -> cx509.CertificateBuilder:
    eku = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    return (builder
            .add_extension(cx509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(cx509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=is_rsa, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=False,
                                          crl_sign=False, encipher_only=False,
                                          decipher_only=False), critical=True)
            .add_extension(cx509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(cx509.SubjectAlternativeName(sans), critical=False)
            .add_extension(cx509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False))


def self_signed(names: Sequence[str], *, days: int = DEV_VALIDITY_DAYS,
                algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
                now: dt.datetime | None = None) -> CertifiedKey:
    """A self-signed leaf (for a lab; certwarden will still flag it when it is served)."""
    sans, cn = split_names(names)
    key = generate_private_key(algorithm)
    start, end = _window(days, now)
    name = _name(cn)
    builder = (cx509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(random_serial())
               .not_valid_before(start).not_valid_after(end))
    builder = _leaf_extensions(builder, key, sans, client=False).add_extension(
        cx509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
    cert = builder.sign(key, hash_for(key))
    return CertifiedKey(_record(cert), key)


def dev_ca(common_name: str = "certwarden development CA", *,
           days: int = DEV_CA_VALIDITY_DAYS, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
           now: dt.datetime | None = None) -> CertifiedKey:
    key = generate_private_key(algorithm)
    start, end = _window(days, now)
    name = _name(common_name, "certwarden development")
    cert = (cx509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(random_serial())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(cx509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(cx509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False,
                                          decipher_only=False), critical=True)
            .add_extension(cx509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hash_for(key)))
    return CertifiedKey(_record(cert), key)


def leaf(ca: CertifiedKey, names: Sequence[str], *, days: int = DEV_VALIDITY_DAYS,
         algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256, client: bool = False,
         now: dt.datetime | None = None) -> CertifiedKey:
    """A leaf signed by ``ca``; never outlives the CA."""
    sans, cn = split_names(names)
    key = generate_private_key(algorithm)
    start, end = _window(days, now)
    end = min(end, ca.certificate.not_after)
    ca_cert = cx509.load_der_x509_certificate(ca.certificate.der)
    builder = (cx509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(random_serial())
               .not_valid_before(start).not_valid_after(end))
    builder = _leaf_extensions(builder, key, sans, client=client).add_extension(
        cx509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    cert = builder.sign(ca.key, hash_for(ca.key))
    return CertifiedKey(_record(cert), key)


def csr(names: Sequence[str], *, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
        ) -> tuple[bytes, PrivateKey]:
    """A PEM CSR with the names as SANs (and the first as CN), and its new key."""
    sans, cn = split_names(names)
    key = generate_private_key(algorithm)
    req = (cx509.CertificateSigningRequestBuilder().subject_name(_name(cn))
           .add_extension(cx509.SubjectAlternativeName(sans), critical=False)
           .sign(key, hash_for(key)))
    return req.public_bytes(serialization.Encoding.PEM), key


def _record(cert: cx509.Certificate) -> Certificate:
    return Certificate.from_der(cert.public_bytes(serialization.Encoding.DER), source="created")


# --- files -----------------------------------------------------------------------------

def write_private(path: str | Path, data: bytes) -> None:
    """Write key material: created 0600 from the first byte (no window at a wider mode)."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise UsageError(f"{p}: cannot write ({exc.strerror or exc})") from None
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_TRUNC: fix it
        os.write(fd, data)
    finally:
        os.close(fd)


def write_public(path: str | Path, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None


def save_dev_ca(ca: CertifiedKey, directory: str | Path, passphrase: bytes | None = None) -> None:
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{d}: cannot create the directory ({exc.strerror or exc})") from None
    write_public(d / "ca.pem", ca.certificate.pem().encode())
    write_private(d / "ca-key.pem", ca.key_pem(passphrase))


def load_dev_ca(directory: str | Path, passphrase: bytes | None = None) -> CertifiedKey:
    d = Path(directory)
    try:
        cert_pem = (d / "ca.pem").read_bytes()
        key_data = (d / "ca-key.pem").read_bytes()
    except OSError as exc:
        raise UsageError(f"{d}: not a development CA directory ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(key_data, password=passphrase)
    except TypeError:
        raise ParseError(str(d / "ca-key.pem"),
                         "key is encrypted: give its passphrase (--ca-passphrase)") from None
    except ValueError:
        raise ParseError(str(d / "ca-key.pem"), "cannot decrypt or read the CA key") from None
    if not isinstance(key, PRIVATE_KEY_TYPES):
        raise ParseError(str(d / "ca-key.pem"), "unsupported CA key type")
    from certwarden.x509.parse import parse_bytes

    cert = parse_bytes(cert_pem, source=str(d / "ca.pem")).certificates[0]
    return CertifiedKey(cert, key)
