"""Where a deployed certificate goes, and how each kind of place is written and restored.

Every target is snapshotted before it is written (``snapshot``), written atomically
(``write``), and can be put back exactly as it was (``restore``): the same bytes, mode and
owner for files, the same object (or no object) for a Kubernetes Secret.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certwarden.errors import CertwardenError, UsageError
from certwarden.x509.keys import pkcs12_encryption


class DeployError(CertwardenError):
    """A deploy step failed at ``location``: the caller rolls back and says why, in one line."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


class TargetKind(StrEnum):
    CERT = "cert"  # the leaf alone (PEM, or DER when ``der``)
    CHAIN = "chain"  # the intermediates
    FULLCHAIN = "fullchain"  # leaf + intermediates (nginx's ssl_certificate, Postfix's)
    KEY = "key"  # the private key, PKCS#8 PEM, always 0600
    PKCS12 = "pkcs12"  # a keystore rewritten in place: same alias, same password
    JKS = "jks"
    K8S_SECRET = "k8s-secret"  # noqa: S105 - a target kind, not a password; a kubernetes.io/tls Secret through the API (create or replace)
    K8S_MANIFEST = "k8s-manifest"  # the same Secret as a YAML file for kubectl apply


FILE_KINDS = frozenset({TargetKind.CERT, TargetKind.CHAIN, TargetKind.FULLCHAIN, TargetKind.KEY,
                        TargetKind.PKCS12, TargetKind.JKS, TargetKind.K8S_MANIFEST})
# Files that hold a private key: written 0600 whatever the old mode was.
SECRET_KINDS = frozenset({TargetKind.KEY, TargetKind.PKCS12, TargetKind.JKS,
                          TargetKind.K8S_MANIFEST})


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployTarget:
    kind: TargetKind
    path: str | None = None  # file kinds
    der: bool = False  # CERT only: the old file was DER, keep it DER
    alias: str | None = None  # keystores: None = the alias of the store's key entry
    password_file: str | None = None  # keystores: the store password, read when deploying
    namespace: str | None = None  # k8s kinds
    name: str | None = None
    kubeconfig: str | None = None  # K8S_SECRET: None = the default kubeconfig
    context: str | None = None

    def __post_init__(self) -> None:
        if self.kind in FILE_KINDS and not self.path:
            raise UsageError(f"deploy target {self.kind}: a path is needed")
        if self.kind in (TargetKind.K8S_SECRET, TargetKind.K8S_MANIFEST) and not (
                self.namespace and self.name):
            raise UsageError(f"deploy target {self.kind}: namespace and name are needed")
        if self.kind in (TargetKind.PKCS12, TargetKind.JKS) and not self.password_file:
            raise UsageError(f"deploy target {self.kind}: password_file is needed")

    @property
    def where(self) -> str:
        if self.kind is TargetKind.K8S_SECRET:
            return f"k8s secret {self.namespace}/{self.name}"
        return str(self.path)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k in self.__slots__ if (v := getattr(self, k)) not in (None, False)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeployTarget:
        try:
            return cls(**{**data, "kind": TargetKind(data["kind"])})
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"bad deploy target {dict(data)!r}: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Material:
    """What is deployed: the leaf, its intermediates, its key (never logged, never stored)."""

    leaf_der: bytes
    chain_der: tuple[bytes, ...]
    key_pem: bytes = field(repr=False)
    serial: str
    sha256: str

    def leaf_pem(self) -> bytes:
        return _pem(self.leaf_der)

    def chain_pem(self) -> bytes:
        return b"".join(_pem(d) for d in self.chain_der)

    def fullchain_pem(self) -> bytes:
        return self.leaf_pem() + self.chain_pem()


def _pem(der: bytes) -> bytes:
    return cx509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """A target as it was before the deploy (bytes, mode, owner; or a Secret's JSON)."""

    target: DeployTarget
    existed: bool
    data: bytes = field(default=b"", repr=False)
    mode: int = 0o644
    owner: tuple[int, int] | None = None


# --- files -------------------------------------------------------------------------------

def write_file(path: Path, data: bytes, mode: int, *, owner: tuple[int, int] | None = None,
               ) -> None:
    """Atomic (temp file + rename), created with its final mode: no window at a wider one."""
    tmp = path.with_name(f".{path.name}.certwarden-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read_password(target: DeployTarget) -> str:
    try:
        text = Path(str(target.password_file)).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployError(target.where, f"cannot read the keystore password file "
                          f"{target.password_file}: {getattr(exc, 'strerror', None) or exc}"
                          ) from None
    return text.rstrip("\r\n")


def snapshot(target: DeployTarget, *, kube: KubeSecrets | None = None) -> Snapshot:
    if target.kind is TargetKind.K8S_SECRET:
        old = (kube or KubeSecrets(target)).read()
        return Snapshot(target=target, existed=old is not None,
                        data=json.dumps(old).encode() if old is not None else b"")
    path = Path(str(target.path))
    try:
        st = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        return Snapshot(target=target, existed=False,
                        mode=0o600 if target.kind in SECRET_KINDS else 0o644)
    except OSError as exc:
        raise DeployError(target.where, f"cannot read: {exc.strerror or exc}") from None
    return Snapshot(target=target, existed=True, data=data, mode=st.st_mode & 0o777,
                    owner=(st.st_uid, st.st_gid))


def render(target: DeployTarget, material: Material, snap: Snapshot) -> bytes:
    """The new bytes of a file target (keystores keep the old alias and password)."""
    kind = target.kind
    if kind is TargetKind.CERT:
        return material.leaf_der if target.der else material.leaf_pem()
    if kind is TargetKind.CHAIN:
        return material.chain_pem()
    if kind is TargetKind.FULLCHAIN:
        return material.fullchain_pem()
    if kind is TargetKind.KEY:
        return material.key_pem
    if kind is TargetKind.K8S_MANIFEST:
        return secret_manifest(str(target.namespace), str(target.name), material).encode()
    password = _read_password(target)
    if kind is TargetKind.PKCS12:
        return _pkcs12(target, material, snap, password)
    return _jks(target, material, snap, password)


def _key(material: Material) -> Any:
    return serialization.load_pem_private_key(material.key_pem, password=None)


def _pkcs12(target: DeployTarget, material: Material, snap: Snapshot, password: str) -> bytes:
    alias = target.alias
    if alias is None and snap.existed:
        try:
            old = pkcs12.load_pkcs12(snap.data, password.encode())
        except ValueError:
            raise DeployError(target.where, "the keystore password does not open it") from None
        if old.cert is not None and old.cert.friendly_name:
            alias = old.cert.friendly_name.decode("utf-8", "replace")
    cas = [cx509.load_der_x509_certificate(d) for d in material.chain_der]
    return pkcs12.serialize_key_and_certificates(
        (alias or "certwarden").encode(), _key(material),
        cx509.load_der_x509_certificate(material.leaf_der), cas or None,
        pkcs12_encryption(password.encode()))


def _jks(target: DeployTarget, material: Material, snap: Snapshot, password: str) -> bytes:
    import jks  # pyjks, imported where used: it is slow to import

    entries: dict[str, Any] = {}
    store_type = "jks"
    if snap.existed:
        try:
            old = jks.KeyStore.loads(snap.data, password)
        except (jks.util.KeystoreSignatureException, jks.util.BadKeystoreFormatException,
                jks.util.DecryptionFailureException) as exc:
            raise DeployError(target.where, f"cannot open the keystore: {exc}") from None
        store_type = old.store_type
        entries = dict(old.entries)
    alias = target.alias or next((a for a, e in entries.items()
                                  if isinstance(e, jks.PrivateKeyEntry)), "certwarden")
    key_der = _key(material).private_bytes(serialization.Encoding.DER,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
    entries[alias] = jks.PrivateKeyEntry.new(alias, [material.leaf_der, *material.chain_der],
                                             key_der, "pkcs8")
    data: bytes = jks.KeyStore.new(store_type, list(entries.values())).saves(password)
    return data


def secret_manifest(namespace: str, name: str, material: Material) -> str:
    return "\n".join([
        "apiVersion: v1", "kind: Secret", "type: kubernetes.io/tls", "metadata:",
        f"  name: {name}", f"  namespace: {namespace}",
        "  labels:", "    app.kubernetes.io/managed-by: certwarden", "data:",
        f"  tls.crt: {base64.b64encode(material.fullchain_pem()).decode()}",
        f"  tls.key: {base64.b64encode(material.key_pem).decode()}", ""])


def write(target: DeployTarget, material: Material, snap: Snapshot, *,
          kube: KubeSecrets | None = None) -> None:
    if target.kind is TargetKind.K8S_SECRET:
        (kube or KubeSecrets(target)).put({
            "tls.crt": base64.b64encode(material.fullchain_pem()).decode(),
            "tls.key": base64.b64encode(material.key_pem).decode()}, existed=snap.existed)
        return
    data = render(target, material, snap)
    mode = 0o600 if target.kind in SECRET_KINDS else snap.mode
    try:
        write_file(Path(str(target.path)), data, mode, owner=snap.owner)
    except OSError as exc:
        raise DeployError(target.where, f"cannot write: {exc.strerror or exc}") from None


def restore(snap: Snapshot, *, kube: KubeSecrets | None = None) -> None:
    target = snap.target
    if target.kind is TargetKind.K8S_SECRET:
        api = kube or KubeSecrets(target)
        if snap.existed:
            api.put(json.loads(snap.data)["data"], existed=True, secret_type=json.loads(
                snap.data).get("type"))
        else:
            api.delete()
        return
    path = Path(str(target.path))
    if snap.existed:
        write_file(path, snap.data, snap.mode, owner=snap.owner)
    else:
        path.unlink(missing_ok=True)


# --- Kubernetes -------------------------------------------------------------------------

class KubeSecrets:
    """One TLS Secret through the Kubernetes API (the official client, raw JSON bodies)."""

    def __init__(self, target: DeployTarget) -> None:
        self.target = target

    def _api(self) -> tuple[Any, Any]:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        try:
            api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=self.target.kubeconfig, context=self.target.context,
                persist_config=False)
        except (ConfigException, OSError, TypeError, KeyError, ValueError) as exc:
            raise DeployError(self.target.where,
                              f"kubeconfig: {' '.join(str(exc).split())[:200]}") from None
        return api_client, client.CoreV1Api(api_client)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            if exc.status == 404 and what in ("read", "delete"):
                return None
            raise DeployError(self.target.where, f"{what}: HTTP {exc.status} {exc.reason}"
                              ) from None
        except (HTTPError, OSError) as exc:
            raise DeployError(self.target.where,
                              f"{what}: {' '.join(str(exc).split())[:200]}") from None

    def read(self) -> dict[str, Any] | None:
        api_client, api = self._api()
        try:
            resp = self._call("read", api.read_namespaced_secret, self.target.name,
                              self.target.namespace, _preload_content=False)
            if resp is None:
                return None
            body = json.loads(resp.data)
            return {"type": body.get("type"), "data": body.get("data") or {}}
        finally:
            api_client.close()

    def put(self, data: Mapping[str, str], *, existed: bool,
            secret_type: str | None = None) -> None:
        body = {"apiVersion": "v1", "kind": "Secret",
                "type": secret_type or "kubernetes.io/tls",
                "metadata": {"name": self.target.name, "namespace": self.target.namespace,
                             "labels": {"app.kubernetes.io/managed-by": "certwarden"}},
                "data": dict(data)}
        api_client, api = self._api()
        try:
            if existed:
                self._call("replace", api.replace_namespaced_secret, self.target.name,
                           self.target.namespace, body, _preload_content=False)
            else:
                self._call("create", api.create_namespaced_secret, self.target.namespace, body,
                           _preload_content=False)
        finally:
            api_client.close()

    def delete(self) -> None:
        api_client, api = self._api()
        try:
            self._call("delete", api.delete_namespaced_secret, self.target.name,
                       self.target.namespace, _preload_content=False)
        finally:
            api_client.close()
