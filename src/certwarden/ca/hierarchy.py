"""Creating a CA: root + issuing intermediate, their keys written, the root's first CRL."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from certwarden.ca.clock import Clock, utcnow
from certwarden.ca.crl import build_crl
from certwarden.ca.keys import write_key_file
from certwarden.ca.ledger import Ledger
from certwarden.ca.model import AuditAction, AuditEvent, Issuer, IssuerRole
from certwarden.ca.policy import CaConfig, config_key
from certwarden.ca.signer import FileSigner, Signer, sign_certificate
from certwarden.errors import UsageError
from certwarden.x509.keys import (
    BACKDATE,
    CA_KEY_ALGORITHMS,
    KeyAlgorithm,
    generate_private_key,
    random_serial,
)

ROOT_LIFETIME = dt.timedelta(days=3650)
INTERMEDIATE_LIFETIME = dt.timedelta(days=1095)
ROOT_CRL_VALIDITY = dt.timedelta(days=365)  # the root key may go offline after init


def slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not s:
        raise UsageError(f"CA name {name!r} has no letters or digits")
    return s[:64]


@dataclass(frozen=True, slots=True, kw_only=True)
class InitResult:
    root: Issuer
    intermediate: Issuer


def _ca_builder(subject: x509.Name, issuer: x509.Name, public: object, *, path_length: int | None,
                now: dt.datetime, lifetime: dt.timedelta, aki_from: object,
                permitted_dns: Sequence[str]) -> x509.CertificateBuilder:
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(public)  # type: ignore[arg-type]
         .serial_number(random_serial())
         .not_valid_before(now - BACKDATE).not_valid_after(now + lifetime)
         .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), True)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                      key_encipherment=False, data_encipherment=False,
                                      key_agreement=False, key_cert_sign=True, crl_sign=True,
                                      encipher_only=False, decipher_only=False), True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False)  # type: ignore[arg-type]
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_from), False))  # type: ignore[arg-type]
    if permitted_dns:
        b = b.add_extension(x509.NameConstraints(
            permitted_subtrees=[x509.DNSName(d.lstrip(".")) for d in permitted_dns],
            excluded_subtrees=None), True)
    return b


def init_ca(ledger: Ledger, *, name: str, key_dir: Path, passphrase: bytes,
            algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
            root_algorithm: KeyAlgorithm | None = None, pkcs11_uri: str | None = None,
            pin: str | None = None, pkcs11_module: str | None = None,
            config: CaConfig | None = None, permitted_dns: Sequence[str] = (), actor: str = "cli",
            clock: Clock = utcnow) -> InitResult:
    """Create root and issuing intermediate, record both, publish the root's first CRL.

    The root key is written to ``key_dir`` and needed again only to sign another
    intermediate or a new root CRL: it can be moved offline after this returns.
    """
    from certwarden.ca.hsm import Pkcs11Uri, generate_in_token

    for alg in (algorithm, root_algorithm or algorithm):
        if alg not in CA_KEY_ALGORITHMS:
            raise UsageError(f"{alg} is not a CA key algorithm; one of: "
                             f"{', '.join(a.value for a in CA_KEY_ALGORITHMS)}")
    cfg = config or CaConfig()
    base = slug(name)
    root_name, int_name = f"{base}-root", base
    if ledger.issuer(root_name) or ledger.issuer(int_name):
        raise UsageError(f"a CA named {base!r} already exists here")
    now = clock()
    root_key = generate_private_key(root_algorithm or algorithm)
    root_path = key_dir / f"{root_name}.key.pem"
    int_path = key_dir / f"{int_name}.key.pem"
    for p in (root_path, int_path):
        if p.exists():
            raise UsageError(f"{p}: a key file already exists; refusing to overwrite it")
    root_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Root"),
                              x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
    int_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
    root_signer = FileSigner(root_key, ref=f"file:{root_path.resolve()}")
    if pkcs11_uri:
        int_signer: Signer = generate_in_token(
            Pkcs11Uri.parse(pkcs11_uri, pin=pin, module=pkcs11_module), algorithm)
    else:
        int_key = generate_private_key(algorithm)
        int_signer = FileSigner(int_key, ref=f"file:{int_path.resolve()}")
    root_cert = sign_certificate(_ca_builder(
        root_subject, root_subject, root_key.public_key(), path_length=None, now=now,
        lifetime=ROOT_LIFETIME, aki_from=root_key.public_key(), permitted_dns=()), root_signer)
    int_cert = sign_certificate(_ca_builder(
        int_subject, root_subject, int_signer.public_key, path_length=0, now=now,
        lifetime=INTERMEDIATE_LIFETIME, aki_from=root_key.public_key(),
        permitted_dns=permitted_dns), root_signer)
    # Keys hit the disk (0600, encrypted) before the ledger names them.
    write_key_file(root_path, root_key, passphrase)
    if int_signer.private_key is not None:
        write_key_file(int_path, int_signer.private_key, passphrase)
    from cryptography.hazmat.primitives.serialization import Encoding

    root = Issuer(name=root_name, role=IssuerRole.ROOT, key_ref=root_signer.key_ref,
                  certificate_der=root_cert.public_bytes(Encoding.DER), created_at=now)
    inter = Issuer(name=int_name, role=IssuerRole.INTERMEDIATE, key_ref=int_signer.key_ref,
                   certificate_der=int_cert.public_bytes(Encoding.DER), parent=root_name,
                   created_at=now)
    ledger.put_setting(config_key(int_name), cfg.as_dict())
    ledger.add_issuer(root, event=AuditEvent(at=now, actor=actor, action=AuditAction.INIT,
                                             issuer=root_name, detail=f"root {name}"))
    ledger.add_issuer(inter, event=AuditEvent(at=now, actor=actor, action=AuditAction.INIT,
                                              issuer=int_name,
                                              detail=f"intermediate {int_signer.key_ref}"))
    build_crl(ledger, root, root_signer, requested_by=actor, validity=ROOT_CRL_VALIDITY, now=now)
    return InitResult(root=root, intermediate=inter)
