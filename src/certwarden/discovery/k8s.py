"""Kubernetes: TLS secrets, Opaque secrets holding PEM/PKCS#12/JKS, ConfigMaps with CA bundles.

Two doors, one reader: the official ``kubernetes`` client (kubeconfig, context, namespace,
paginated lists, raw JSON so secret data never goes through model classes), and a dump from
``kubectl get secrets,configmaps -A -o yaml|json``. Each object is read by ``read_object``.

Locations: ``k8s://CONTEXT/NAMESPACE/NAME#KEY`` for secrets and
``k8s://CONTEXT/NAMESPACE/configmap/NAME#KEY`` for ConfigMaps (a secret name has no ``/``).
A private key in the same object pairs with the certificate whose public key it holds.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import Any

from certwarden.errors import ConnectError, ParseError, PasswordError, UsageError
from certwarden.records import KeyFile, Location, Outcome, OutcomeStatus, Sighting
from certwarden.x509 import Certificate, KeyInfo
from certwarden.x509.parse import parse_with_passwords, read_limited

PAGE_SIZE = 200  # objects per list call: the API server's own default page is 500
_CERT_MARKERS = (b"-----BEGIN CERTIFICATE", b"-----BEGIN PKCS7", b"-----BEGIN TRUSTED")
_JKS = (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce")
_BINARY_HINTS = (".p12", ".pfx", ".jks", ".keystore", ".truststore", ".der", ".crt", ".cer")


Result = Sighting | Outcome


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _interesting(key: str, data: bytes) -> bool:
    head = data[:8192]
    if any(m in head for m in _CERT_MARKERS) or head[:4] in _JKS:
        return True
    return head[:1] == b"\x30" and key.lower().endswith(_BINARY_HINTS)


def _passwords(values: dict[str, bytes], extra: Sequence[bytes]) -> list[bytes | None]:
    # A keystore's password often travels in the same secret (cert-manager: keystore.jks
    # beside "password-secret" keys); try those after the ones given on the command line.
    found = [v.strip() for k, v in values.items()
             if "pass" in k.lower() and 0 < len(v) < 256]
    tries: list[bytes | None] = [*extra, *found]
    return tries or [None]


def read_object(obj: dict[str, Any], *, kind: str | None = None, context: str = "dump",
                passwords: Sequence[bytes] = (), seen_at: dt.datetime | None = None,
                ) -> Iterator[Result]:
    """Every certificate in one Secret or ConfigMap (as the API returns it, as a dict)."""
    kind = obj.get("kind") or kind
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace") or "default", meta.get("name") or "?"
    if kind == "Secret":
        values = {k: d for k, v in (obj.get("data") or {}).items()
                  if isinstance(v, str) and (d := _b64(v)) is not None}
        values.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()
                       if isinstance(v, str)})
        obj_name, extra = name, {"object": "Secret", "type": str(obj.get("type") or "Opaque")}
    elif kind == "ConfigMap":
        values = {k: v.encode() for k, v in (obj.get("data") or {}).items()
                  if isinstance(v, str)}
        values.update({k: d for k, v in (obj.get("binaryData") or {}).items()
                       if isinstance(v, str) and (d := _b64(v)) is not None})
        obj_name, extra = f"configmap/{name}", {"object": "ConfigMap"}
    else:
        return
    now = seen_at or dt.datetime.now(dt.UTC)
    tries = _passwords(values, passwords)
    found: list[tuple[str, tuple[Certificate, ...]]] = []
    keys: list[tuple[str, KeyInfo]] = []
    for key in sorted(values):
        data = values[key]
        is_key = b"PRIVATE KEY-----" in data[:8192]
        if not (_interesting(key, data) or is_key):
            continue
        uri = Location.k8s(context, ns, obj_name, key).uri
        try:
            parsed = parse_with_passwords(data, source=uri, passwords=tries)
        except ParseError as err:
            if not (is_key and not _interesting(key, data)):
                status = (OutcomeStatus.NEEDS_PASSWORD if isinstance(err, PasswordError)
                          else OutcomeStatus.BROKEN)
                yield Outcome(location=uri, status=status, reason=err.reason)
            continue
        keys.extend((key, k) for k in parsed.keys)
        if parsed.certificates:
            found.append((key, parsed.certificates))
    for key, certs in found:
        loc = Location.k8s(context, ns, obj_name, key)
        for pos, cert in enumerate(certs):
            match = _pair(cert, pos, keys, key)
            key_file = None if match is None else KeyFile(
                path=Location.k8s(context, ns, obj_name, match[0]).uri,
                encrypted=match[1].encrypted)
            yield Sighting(certificate=cert, location=loc, seen_at=now, position=pos,
                           key=key_file, extra=dict(extra))
        yield Outcome(location=loc.uri, status=OutcomeStatus.OK, reason=f"{len(certs)} cert(s)")


def _pair(cert: Certificate, pos: int, keys: list[tuple[str, KeyInfo]],
          where: str) -> tuple[str, KeyInfo] | None:
    for name, info in keys:
        if info.spki_sha256 and info.spki_sha256 == cert.spki_sha256:
            return name, info
    if pos == 0 and not cert.is_ca:
        # A keystore's own key (pin unknown while encrypted) belongs to its first leaf.
        for name, info in keys:
            if name == where and info.spki_sha256 is None:
                return name, info
    return None


# --- dumps ---------------------------------------------------------------------------------

MAX_DUMP_BYTES = 512 * 1024 * 1024  # a big cluster's secrets; a device or endless pipe is not


def read_dump(path: str, *, context: str = "dump", passwords: Sequence[bytes] = (),
              ) -> Iterator[Result]:
    """A ``kubectl get ... -o yaml|json`` dump: a List, a single object, or YAML documents."""
    import yaml

    try:
        text = read_limited(path, MAX_DUMP_BYTES, what="a kubectl dump we read").decode("utf-8")
    except ParseError as exc:
        raise UsageError(str(exc)) from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    try:
        docs = [json.loads(text)] if text.lstrip().startswith("{") else [
            d for d in yaml.safe_load_all(text) if d is not None]
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = " ".join(str(exc).split())[:160]
        raise UsageError(f"{path}: not a kubectl JSON or YAML dump ({first})") from None
    except RecursionError:
        raise UsageError(f"{path}: not a kubectl dump (nested too deeply)") from None
    objects: list[dict[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, dict):
            raise UsageError(f"{path}: not a kubectl dump (top level is not an object)")
        items = doc.get("items")
        if isinstance(items, list):
            objects.extend(i for i in items if isinstance(i, dict))
        else:
            objects.append(doc)
    if not any(o.get("kind") in ("Secret", "ConfigMap") for o in objects):
        raise UsageError(f"{path}: no Secret or ConfigMap in this dump")
    now = dt.datetime.now(dt.UTC)
    for obj in objects:
        yield from read_object(obj, context=context, passwords=passwords, seen_at=now)


# --- the API ------------------------------------------------------------------------------

def read_cluster(*, kubeconfig: str | None = None, context: str | None = None,
                 namespace: str | None = None, passwords: Sequence[bytes] = (),
                 page_size: int = PAGE_SIZE) -> Iterator[Result]:
    """List secrets and config maps through the API (paginated) and read each one."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, persist_config=False)
        if context is None:
            _, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=kubeconfig)
            context = str(active["name"])
    except (ConfigException, OSError, TypeError, KeyError, ValueError) as exc:
        raise UsageError(f"kubeconfig: {' '.join(str(exc).split())[:200]}") from None
    api = client.CoreV1Api(api_client)
    now = dt.datetime.now(dt.UTC)
    try:
        for kind, lister in (("Secret", "secret"), ("ConfigMap", "config_map")):
            for obj in _pages(api, lister, namespace, page_size):
                yield from read_object(obj, kind=kind, context=context, passwords=passwords,
                                       seen_at=now)
    finally:
        api_client.close()


def _pages(api: Any, lister: str, namespace: str | None, page_size: int,
           ) -> Iterator[dict[str, Any]]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": page_size, "_preload_content": False}
        if token:
            kwargs["_continue"] = token
        where = f"namespace {namespace}" if namespace else "all namespaces"
        try:
            if namespace:
                resp = getattr(api, f"list_namespaced_{lister}")(namespace, **kwargs)
            else:
                resp = getattr(api, f"list_{lister}_for_all_namespaces")(**kwargs)
            body = json.loads(resp.data)
        except ApiException as exc:
            raise ConnectError(f"kubernetes {lister} list ({where})",
                               f"HTTP {exc.status} {exc.reason}") from None
        except (HTTPError, OSError) as exc:
            raise ConnectError(f"kubernetes {lister} list ({where})",
                               " ".join(str(exc).split())[:200]) from None
        except ValueError:
            raise ConnectError(f"kubernetes {lister} list ({where})",
                               "the API answered something that is not JSON") from None
        yield from (i for i in body.get("items") or [] if isinstance(i, dict))
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return
