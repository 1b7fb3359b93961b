"""Distributing trust: the private root in the forms the clients that need it can load.

A private CA helps only once every client trusts its root. Clients differ: OpenSSL-based ones
read a PEM bundle, Java reads a JKS or PKCS#12 truststore, Kubernetes workloads mount a
ConfigMap (the shape trust-manager distributes). One call writes them all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certwarden.ca.ledger import Ledger
from certwarden.ca.model import IssuerRole
from certwarden.errors import UsageError
from certwarden.x509 import Certificate

# Java's own default truststore password; a truststore holds no secret, only public roots.
JAVA_DEFAULT_STOREPASS = "changeit"


class BundleFormat(StrEnum):
    PEM = "pem"  # ca-bundle.pem: OpenSSL, curl, Python, Go, nginx
    JKS = "jks"  # truststore.jks: Java 8 and older tools
    PKCS12 = "p12"  # truststore.p12: Java 9+ default keystore type
    K8S = "k8s"  # trust-configmap.yaml: a ConfigMap with ca.crt for workloads to mount


ALL_FORMATS = tuple(BundleFormat)
# A Kubernetes namespace is an RFC 1123 label; checked because it is written into YAML.
_NAMESPACE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
FILE_NAMES = {BundleFormat.PEM: "ca-bundle.pem", BundleFormat.JKS: "truststore.jks",
              BundleFormat.PKCS12: "truststore.p12", BundleFormat.K8S: "trust-configmap.yaml"}


def own_anchors(ledger: Ledger) -> tuple[Certificate, ...]:
    """The roots of certwarden's own CA: what every client (and the assessment) must trust."""
    return tuple(Certificate.from_der(i.certificate_der) for i in ledger.issuers()
                 if i.role is IssuerRole.ROOT)


@dataclass(frozen=True, slots=True, kw_only=True)
class WrittenBundle:
    format: BundleFormat
    path: Path
    anchors: int


def write_bundles(anchors: Sequence[Certificate], out_dir: str | Path, *,
                  formats: Sequence[BundleFormat] = ALL_FORMATS,
                  store_password: str = JAVA_DEFAULT_STOREPASS,
                  configmap_name: str = "certwarden-trust",
                  namespace: str | None = None) -> list[WrittenBundle]:
    """Write each requested format into ``out_dir``; returns what was written."""
    if not anchors:
        raise UsageError("no trust anchor to distribute (run `certwarden ca init` first)")
    if not all(a.is_ca for a in anchors):
        bad = next(a for a in anchors if not a.is_ca)
        raise UsageError(f"{bad.subject}: not a CA certificate; refusing to distribute it as "
                         "a trust anchor")
    if namespace is not None and not _NAMESPACE.fullmatch(namespace):
        raise UsageError(f"not a Kubernetes namespace name (RFC 1123 label): {namespace!r}")
    if not store_password and any(f in (BundleFormat.JKS, BundleFormat.PKCS12) for f in formats):
        raise UsageError("the truststore password cannot be empty")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create the directory ({exc.strerror or exc})") from None
    pem = "".join(a.pem() for a in anchors)
    written: list[WrittenBundle] = []
    for fmt in dict.fromkeys(formats):
        path = out / FILE_NAMES[fmt]
        if fmt is BundleFormat.PEM:
            data = pem.encode()
        elif fmt is BundleFormat.JKS:
            data = _jks(anchors, store_password)
        elif fmt is BundleFormat.PKCS12:
            data = _pkcs12(anchors, store_password)
        else:
            data = _configmap(pem, configmap_name, namespace).encode()
        _write_atomic(path, data)
        written.append(WrittenBundle(format=fmt, path=path, anchors=len(anchors)))
    return written


def _alias(cert: Certificate) -> str:
    return f"certwarden-{cert.sha256[:16]}"


def _jks(anchors: Sequence[Certificate], password: str) -> bytes:
    import jks  # pyjks, imported where used: it is slow to import

    entries = [jks.TrustedCertEntry.new(_alias(a), a.der) for a in anchors]
    data: bytes = jks.KeyStore.new("jks", entries).saves(password)
    return data


def _pkcs12(anchors: Sequence[Certificate], password: str) -> bytes:
    certs = [pkcs12.PKCS12Certificate(cx509.load_der_x509_certificate(a.der), _alias(a).encode())
             for a in anchors]
    return pkcs12.serialize_java_truststore(
        certs, serialization.BestAvailableEncryption(password.encode()))


def _configmap(pem: str, name: str, namespace: str | None) -> str:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", f"  name: {name}"]
    if namespace:
        lines.append(f"  namespace: {namespace}")
    lines += ["  labels:", "    app.kubernetes.io/managed-by: certwarden", "data:",
              "  ca.crt: |"]
    lines += [f"    {line}" for line in pem.strip().splitlines()]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None
