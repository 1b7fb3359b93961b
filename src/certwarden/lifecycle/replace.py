"""Replacing self-signed (and other unmanaged) certificates with ones from the private CA.

``plan`` decides, per location, what can be done; ``execute`` issues each replacement from the
CA (the issuance is durable in the CA ledger before anything is written) and then either
swaps the files in place — keeping a backup and the old owner and mode — or writes the new
certificate and key to an output directory (TLS endpoints, keystores, encrypted keys), or a
Kubernetes TLS Secret manifest. One failing location never stops the others.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certwarden.assess.target import used_as_leaf
from certwarden.ca import Authority
from certwarden.discovery.files import BACKUP_DIR, is_backup
from certwarden.errors import CertwardenError
from certwarden.records import LocationKind, Sighting
from certwarden.store.inventory import Inventory
from certwarden.x509 import Certificate, Kind

DEFAULT_PROFILE = "tls-server"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Selection(StrEnum):
    SELF_SIGNED = "self-signed"  # self-signed and self-issued leaves (the default)
    UNMANAGED = "unmanaged"  # every leaf our CA did not issue


class Action(StrEnum):
    IN_PLACE = "in-place"  # swap the PEM/DER file and its unencrypted key beside it
    WRITE_OUT = "write-out"  # new cert + key in the output directory, deploy by hand
    K8S_MANIFEST = "k8s-manifest"  # a kubernetes.io/tls Secret manifest for the same secret
    SKIP = "skip"


class Status(StrEnum):
    PLANNED = "planned"  # dry run
    REPLACED = "replaced"
    WRITTEN = "written"
    SKIPPED = "skipped"
    REFUSED = "refused"  # the CA's policy said no
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanItem:
    location: str  # the location URI
    old_sha256: str
    names: tuple[str, ...]
    action: Action
    reason: str
    sighting: Sighting


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    item: PlanItem
    status: Status
    reason: str | None = None
    serial: str | None = None
    new_sha256: str | None = None
    paths: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"location": self.item.location, "old_sha256": self.item.old_sha256,
                "names": list(self.item.names), "action": str(self.item.action),
                "status": str(self.status), "reason": self.reason or self.item.reason,
                "serial": self.serial, "new_sha256": self.new_sha256, "paths": list(self.paths)}


def selected(s: Sighting, selection: Selection, our_issuers: frozenset[str],
             issuers: Set[str] = frozenset()) -> bool:
    """A replacement candidate: used as a service's own certificate, and in ``selection``.

    What it is used as decides, not basicConstraints (``assess.target.used_as_leaf``): the
    CA:TRUE certificate that ``openssl req -x509`` makes is a candidate where nginx serves it
    or where its key lies beside it; a CA certificate seen only as an issuer (``issuers``:
    names that signed another certificate of the inventory) or in a trust bundle is not.
    Our own CA's certificates and certwarden's backups never are.
    """
    cert = s.certificate
    if s.position != 0 or (cert.is_ca and cert.subject in our_issuers):
        return False
    if s.location.kind is LocationKind.FILE and s.location.path and is_backup(s.location.path):
        return False
    if not used_as_leaf(cert, s, issuers):
        return False
    if selection is Selection.SELF_SIGNED:
        return cert.kind in (Kind.SELF_SIGNED, Kind.SELF_ISSUED)
    return cert.issuer not in our_issuers


def issuer_names(sightings: Iterable[Sighting]) -> frozenset[str]:
    """Names that signed another certificate in ``sightings`` (their leaves and chains)."""
    out: set[str] = set()
    for s in sightings:
        for c in (s.certificate, *s.chain):
            if not c.self_issued:
                out.add(c.issuer)
    return frozenset(out)


def names_for(s: Sighting) -> tuple[str, ...]:
    """The names the replacement must carry: the old SANs (else CN), plus the name clients use."""
    cert = s.certificate
    names = list(cert.sans.dns) + list(cert.sans.ip)
    if not names and cert.subject_cn and _is_name(cert.subject_cn):
        names.append(cert.subject_cn)
    for extra in (s.location.sni, s.location.host):
        if extra and extra not in names and _is_name(extra) and s.location.kind is LocationKind.TLS:
            names.append(extra)
    return tuple(dict.fromkeys(n.lower() for n in names))


def _is_name(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(re.fullmatch(r"(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?", text))
    return True


def plan(sightings: Iterable[Sighting], *, selection: Selection = Selection.SELF_SIGNED,
         our_issuers: frozenset[str] = frozenset(),
         issuers: frozenset[str] | None = None) -> list[PlanItem]:
    """``issuers``: names that signed something in the whole inventory (default: computed
    from ``sightings``; pass it when ``sightings`` is a filtered part of the inventory)."""
    sightings = list(sightings)
    if issuers is None:
        issuers = issuer_names(sightings)
    items: list[PlanItem] = []
    seen: set[str] = set()
    for s in sightings:
        if s.position != 0 or s.location.uri in seen:
            continue
        if not selected(s, selection, our_issuers, issuers):
            continue
        seen.add(s.location.uri)
        names = names_for(s)
        action, reason = _action(s, names)
        items.append(PlanItem(location=s.location.uri, old_sha256=s.certificate.sha256,
                              names=names, action=action, reason=reason, sighting=s))
    return items


def _action(s: Sighting, names: tuple[str, ...]) -> tuple[Action, str]:
    loc = s.location
    if not names:
        return Action.SKIP, "no DNS name or IP in the certificate to carry over"
    if loc.kind is LocationKind.PCAP:
        return Action.SKIP, "seen only in traffic: find and scan the server first"
    if loc.kind is LocationKind.K8S:
        return Action.K8S_MANIFEST, "Secret manifest to apply with kubectl"
    if loc.kind is LocationKind.FILE:
        key = s.key
        if key is None:
            return Action.WRITE_OUT, "no private key found beside the certificate"
        if key.encrypted:
            return Action.WRITE_OUT, "the key beside it is encrypted: deploy by hand"
        if not loc.path or not _single_cert_file(loc.path):
            return Action.WRITE_OUT, "the file is a keystore or bundle: deploy by hand"
        return Action.IN_PLACE, f"replace {loc.path} and {key.path}"
    return Action.WRITE_OUT, "a network endpoint: install the new files on the server"


def _single_cert_file(path: str) -> bool:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    if data.startswith(b"\x30"):
        return True
    return data.count(b"-----BEGIN CERTIFICATE-----") == 1 and b"PRIVATE KEY" not in data


def execute(items: Sequence[PlanItem], authority: Authority, *, out_dir: str | Path,
            apply_in_place: bool, profile: str = DEFAULT_PROFILE,
            now: dt.datetime | None = None) -> list[Result]:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    out = Path(out_dir)
    results: list[Result] = []
    paths: tuple[str, ...]
    for item in items:
        if item.action is Action.SKIP:
            results.append(Result(item=item, status=Status.SKIPPED))
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            issued = authority.issue(None, profile=profile, names=item.names,
                                     requested_by=f"replace:{item.location}",
                                     public_key=key.public_key())
        except CertwardenError as exc:
            results.append(Result(item=item, status=Status.REFUSED, reason=str(exc)))
            continue
        new = Certificate.from_der(issued.leaf_der)
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        try:
            if item.action is Action.IN_PLACE and apply_in_place:
                paths = _swap_files(item, issued.pem(), issued.leaf_der, key_pem, stamp)
                status = Status.REPLACED
            elif item.action is Action.K8S_MANIFEST:
                paths = (_write_secret(item, issued.pem(), key_pem, out),)
                status = Status.WRITTEN
            else:
                paths = _write_out(item, issued.pem(), key_pem, out)
                status = Status.WRITTEN
        except OSError as exc:
            # Issued and recorded by the CA, but not deployed: say so, with the serial.
            results.append(Result(item=item, status=Status.FAILED, serial=issued.serial,
                                  new_sha256=new.sha256,
                                  reason=f"issued but not written: {exc.strerror or exc}"))
            continue
        results.append(Result(item=item, status=status, serial=issued.serial,
                              new_sha256=new.sha256, paths=paths))
    return results


def _stem(item: PlanItem) -> str:
    return _SAFE.sub("_", item.names[0].replace("*", "wildcard"))[:80] + "-" + item.old_sha256[:8]


def _write_out(item: PlanItem, chain_pem: str, key_pem: bytes, out: Path) -> tuple[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / f"{_stem(item)}.pem", out / f"{_stem(item)}-key.pem"
    _write(cert_path, chain_pem.encode(), 0o644)
    _write(key_path, key_pem, 0o600)
    return str(cert_path), str(key_path)


def _write_secret(item: PlanItem, chain_pem: str, key_pem: bytes, out: Path) -> str:
    import base64

    loc = item.sighting.location
    namespace, _, name = (loc.path or "default/replaced").partition("/")
    doc = "\n".join([
        "apiVersion: v1", "kind: Secret", "type: kubernetes.io/tls", "metadata:",
        f"  name: {name}", f"  namespace: {namespace}",
        "  labels:", "    app.kubernetes.io/managed-by: certwarden", "data:",
        f"  tls.crt: {base64.b64encode(chain_pem.encode()).decode()}",
        f"  tls.key: {base64.b64encode(key_pem).decode()}", ""])
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"secret-{namespace}-{name}.yaml"
    _write(path, doc.encode(), 0o600)  # it holds a private key
    return str(path)


def _swap_files(item: PlanItem, chain_pem: str, leaf_der: bytes, key_pem: bytes,
                stamp: str) -> tuple[str, str]:
    loc, key = item.sighting.location, item.sighting.key
    if loc.path is None or key is None:  # _action never plans IN_PLACE without both
        raise OSError("nothing to replace in place")
    cert_path, key_path = Path(loc.path), Path(key.path)
    old_cert, old_key = cert_path.read_bytes(), key_path.read_bytes()
    cert_st, key_st = cert_path.stat(), key_path.stat()
    # Backups go where the file sweep does not look (BACKUP_DIR), with the original mode and
    # owner: beside the live files they were swept as live self-signed certificates and
    # exposed keys, and planned for replacement themselves (issue 11).
    for path, data, st in ((cert_path, old_cert, cert_st), (key_path, old_key, key_st)):
        _write(backup_path(path, stamp), data, st.st_mode & 0o777,
               owner=(st.st_uid, st.st_gid))
    new_cert = leaf_der if old_cert.startswith(b"\x30") else chain_pem.encode()
    # The key first: a service restarted between the two writes then fails loudly on a
    # mismatch instead of serving the old certificate with a key that no longer matches.
    _write(key_path, key_pem, 0o600, owner=(key_st.st_uid, key_st.st_gid))
    _write(cert_path, new_cert, cert_st.st_mode & 0o777, owner=(cert_st.st_uid, cert_st.st_gid))
    return str(cert_path), str(key_path)


def backup_path(path: Path, stamp: str) -> Path:
    """``DIR/.certwarden-backup/NAME.STAMP`` (the directory made 0700 if missing), where the
    file sweep does not look. Never an existing file: two swaps within one second keep both
    (``NAME.STAMP-2`` ...)."""
    folder = path.parent / BACKUP_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    candidate, n = folder / f"{path.name}.{stamp}", 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{path.name}.{stamp}-{n}"
    return candidate


def _write(path: Path, data: bytes, mode: int, *, owner: tuple[int, int] | None = None) -> None:
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


def rescan_files(inventory: Inventory, results: Sequence[Result]) -> int | None:
    """Sweep the files just replaced into the inventory, so it shows the change at once."""
    from certwarden.discovery.files import sweep

    paths = sorted({p for r in results if r.status is Status.REPLACED for p in r.paths})
    if not paths:
        return None
    with inventory.record("files", paths) as rec:
        rec.add_all(sweep(paths))
    return rec.scan_id
