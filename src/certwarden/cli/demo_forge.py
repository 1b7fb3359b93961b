"""Forging the sandbox's bad certificates, including the ones no sane library will make.

cryptography refuses MD5 signatures, version 1 certificates and zero, negative or 21-octet
serials -- rightly. The demo estate (and the rule tests) need exactly those, so we build a
sound certificate first and then rewrite its TBSCertificate in DER and sign it again.
Never used for anything but the loopback sandbox and tests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certwarden.x509 import Certificate
from certwarden.x509 import der as dercodec
from certwarden.x509.keys import KeyAlgorithm, generate_private_key, key_pem

PrivateKey = Any  # rsa / ec / dsa / ed25519 private key

_NAME_OIDS = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME,
              "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "C": NameOID.COUNTRY_NAME,
              "ST": NameOID.STATE_OR_PROVINCE_NAME, "L": NameOID.LOCALITY_NAME}
_SIG_OIDS = {  # DER of AlgorithmIdentifier for the hashes cryptography will not sign with
    ("rsa", "md5"): bytes.fromhex("300d06092a864886f70d0101040500"),
    ("rsa", "sha1"): bytes.fromhex("300d06092a864886f70d0101050500"),
    ("ec", "sha1"): bytes.fromhex("300906072a8648ce3d0401"),
}
_Hash = type[hashes.MD5 | hashes.SHA1 | hashes.SHA256 | hashes.SHA384]
_HASHES: dict[str, _Hash] = {"md5": hashes.MD5, "sha1": hashes.SHA1, "sha256": hashes.SHA256,
           "sha384": hashes.SHA384}


_SOUND_KEYS = {"ec256": KeyAlgorithm.EC_P256, "ec384": KeyAlgorithm.EC_P384,
               "rsa2048": KeyAlgorithm.RSA_2048, "rsa3072": KeyAlgorithm.RSA_3072,
               "rsa4096": KeyAlgorithm.RSA_4096, "ed25519": KeyAlgorithm.ED25519}


def make_key(spec: str) -> PrivateKey:
    """``ec256``, ``ec384``, ``ec192``, ``rsa1024``, ``rsa2048``, ``dsa2048``, ``ed25519``.

    Sound keys come from ``x509.keys`` like every other key; the weak ones (P-192, RSA under
    2048 bits, DSA) exist only here, because the sandbox must serve what the rules flag.
    """
    if spec in _SOUND_KEYS:
        return generate_private_key(_SOUND_KEYS[spec])
    if spec.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(spec[3:]))
    if spec == "ec192":
        return ec.generate_private_key(ec.SECP192R1())
    if spec.startswith("dsa"):
        return dsa.generate_private_key(key_size=int(spec[3:]))
    raise ValueError(f"unknown key spec {spec!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Forged:
    certificate: Certificate
    key: PrivateKey = field(repr=False)

    @property
    def der(self) -> bytes:
        return self.certificate.der

    def pem(self) -> bytes:
        return self.certificate.pem().encode()

    def key_pem(self, passphrase: bytes | None = None) -> bytes:
        return key_pem(self.key, passphrase)


def forge(*, subject: str = "CN=svc.demo.test", sans: tuple[str, ...] = ("svc.demo.test",),
          key: PrivateKey | str = "ec256", issuer: Forged | None = None,
          not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
          days: int = 60, ca: bool | None = False, hash_name: str = "sha256",
          serial: int = 0x1234_5678_9ABC, version: int = 3,
          eku: tuple[str, ...] = ("serverAuth",), self_issued_bad_signature: bool = False,
          issuer_name: str | None = None, signer_key: PrivateKey | None = None) -> Forged:
    """One certificate. ``issuer=None`` is self-signed. Subject like ``CN=a,O=b``.

    ``self_issued_bad_signature``: issuer name = subject, but signed by another key (a
    self-issued certificate that no key we have verifies). ``signer_key``: sign with this key
    instead of the issuer's, keeping the issuer's name and key identifier (a forgery).
    """
    priv = make_key(key) if isinstance(key, str) else key
    nb = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    na = not_after or nb + dt.timedelta(days=days)
    subj = _name(subject)
    if issuer is not None:
        iss_name = cx509.load_der_x509_certificate(issuer.der).subject
        signer = signer_key or issuer.key
    else:
        iss_name = _name(issuer_name) if issuer_name else subj
        signer = make_key("ec256") if self_issued_bad_signature else priv
    b = (cx509.CertificateBuilder().subject_name(subj).issuer_name(iss_name)
         .public_key(priv.public_key()).serial_number(4242)
         .not_valid_before(nb).not_valid_after(na))
    if ca is not None:
        b = b.add_extension(cx509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if sans:
        b = b.add_extension(cx509.SubjectAlternativeName([_general_name(n) for n in sans]),
                            critical=False)
    if eku and not ca:
        b = b.add_extension(cx509.ExtendedKeyUsage(
            [getattr(ExtendedKeyUsageOID, _EKU[e]) for e in eku]), critical=False)
    b = b.add_extension(cx509.SubjectKeyIdentifier.from_public_key(priv.public_key()),
                        critical=False)
    if issuer is not None:
        b = b.add_extension(cx509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.key.public_key()), critical=False)
    if ca:
        b = b.add_extension(cx509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    sound_hash = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    der = b.sign(signer, sound_hash).public_bytes(serialization.Encoding.DER)
    der = _rewrite(der, signer, hash_name=hash_name, version=version, serial=serial)
    return Forged(certificate=Certificate.from_der(der, source="forged"), key=priv)


_EKU = {"serverAuth": "SERVER_AUTH", "clientAuth": "CLIENT_AUTH",
        "emailProtection": "EMAIL_PROTECTION", "codeSigning": "CODE_SIGNING"}


def _name(text: str) -> cx509.Name:
    attrs = []
    for part in (p for p in text.split(",") if p.strip()):
        k, _, v = part.strip().partition("=")
        attrs.append(cx509.NameAttribute(_NAME_OIDS[k.strip()], v.strip()))
    return cx509.Name(attrs)


def _general_name(n: str) -> cx509.GeneralName:
    try:
        return cx509.IPAddress(ipaddress.ip_address(n))
    except ValueError:
        return cx509.DNSName(n)


# ---- DER surgery on TBSCertificate (with x509.der, the one DER reader/writer) ----

def _rewrite(der: bytes, signer: PrivateKey, *, hash_name: str, version: int,
             serial: int) -> bytes:
    outer = dercodec.children(der)
    tbs = dercodec.children(outer[0])
    has_version = tbs[0][0] == 0xA0
    idx = 1 if has_version else 0
    tbs[idx] = dercodec.integer(serial)
    if hash_name != "sha256":
        algo = "rsa" if isinstance(signer, rsa.RSAPrivateKey) else "ec"
        sigalg = _SIG_OIDS[(algo, hash_name)]
        tbs[idx + 1] = sigalg
    else:
        sigalg = outer[1]
    if version == 1:
        tbs = [t for t in tbs if t[0] not in (0xA0, 0xA3)]
    new_tbs = dercodec.seq(*tbs)
    h = _HASHES[hash_name]()
    if isinstance(signer, rsa.RSAPrivateKey):
        sig = signer.sign(new_tbs, padding.PKCS1v15(), h)
    elif isinstance(signer, ec.EllipticCurvePrivateKey):
        sig = signer.sign(new_tbs, ec.ECDSA(h))
    elif isinstance(signer, dsa.DSAPrivateKey):
        sig = signer.sign(new_tbs, h)
    else:
        sig = signer.sign(new_tbs)
    return dercodec.seq(new_tbs, sigalg, dercodec.bit_string(sig))
