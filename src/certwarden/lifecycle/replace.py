"""Replacing self-signed (and other unmanaged) certificates with ones from the private CA.

``plan`` decides, per location, what can be done; ``execute`` issues each replacement from the
CA (the issuance is durable in the CA ledger before anything is written) and then either
swaps the files in place — keeping a backup and the old owner and mode — or writes the new
certificate and key to an output directory (TLS endpoints, keystores, encrypted keys), or a
Kubernetes TLS Secret manifest. One failing location never stops the others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from certwarden.assess.target import used_as_leaf
from certwarden.ca import Authority
from certwarden.discovery.files import is_backup
from certwarden.errors import CertwardenError, UsageError
from certwarden.lifecycle.config import LifecycleConfig
from certwarden.lifecycle.deploy import (
    PRE_DEPLOY_CHECKS,
    DeployStatus,
    PreDeployCheck,
    Recipe,
    deploy,
)
from certwarden.lifecycle.deploy_targets import (
    DeployTarget,
    Material,
    TargetKind,
    secret_manifest,
    write_file,
)
from certwarden.lifecycle.events import Event, EventKind, EventSink, discard
from certwarden.lifecycle.renew import issue_material, register
from certwarden.records import LocationKind, Sighting
from certwarden.store.inventory import Inventory
from certwarden.store.managed import ManagedStore
from certwarden.store.managed_records import Attempt, AttemptKind, AttemptOutcome
from certwarden.x509 import Kind

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
    REFUSED = "refused"  # the CA's policy (or a pre-deploy check) said no
    ROLLED_BACK = "rolled-back"  # deployed, reload or verification failed, restored
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanItem:
    location: str  # the location URI
    old_sha256: str
    names: tuple[str, ...]
    action: Action
    reason: str
    sighting: Sighting
    served: tuple[str, ...] = ()  # tls:// locations serving the same certificate: verified


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    item: PlanItem
    status: Status
    reason: str | None = None
    serial: str | None = None
    new_sha256: str | None = None
    paths: tuple[str, ...] = ()
    managed_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"location": self.item.location, "old_sha256": self.item.old_sha256,
                "names": list(self.item.names), "action": str(self.item.action),
                "status": str(self.status), "reason": self.reason or self.item.reason,
                "serial": self.serial, "new_sha256": self.new_sha256, "paths": list(self.paths),
                "served": list(self.item.served), "managed_id": self.managed_id}


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
         config: LifecycleConfig | None = None,
         issuers: frozenset[str] | None = None) -> list[PlanItem]:
    """One item per location; a TLS endpoint serving the certificate of a file that is
    replaced in place joins that file's item (it is verified after the reload, not planned).

    ``issuers``: names that signed something in the whole inventory (default: computed
    from ``sightings``; pass it when ``sightings`` is a filtered part of the inventory)."""
    cfg = config or LifecycleConfig()
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
        action, reason = _action(s, names, cfg)
        items.append(PlanItem(location=s.location.uri, old_sha256=s.certificate.sha256,
                              names=names, action=action, reason=reason, sighting=s))
    return _merge_served(items)


def _merge_served(items: list[PlanItem]) -> list[PlanItem]:
    in_place = {i.old_sha256: i for i in items if i.action is Action.IN_PLACE
                and i.sighting.location.kind is not LocationKind.TLS}
    out: list[PlanItem] = []
    served: dict[str, list[PlanItem]] = {}
    for i in items:
        owner = in_place.get(i.old_sha256)
        if i.sighting.location.kind is LocationKind.TLS and owner is not None:
            served.setdefault(owner.location, []).append(i)
        else:
            out.append(i)
    merged = []
    for i in out:
        extra = served.get(i.location, [])
        if extra:
            names = tuple(dict.fromkeys([*i.names, *(n for e in extra for n in e.names)]))
            i = PlanItem(location=i.location, old_sha256=i.old_sha256, names=names,
                         action=i.action, reason=i.reason, sighting=i.sighting,
                         served=tuple(e.location for e in extra))
        merged.append(i)
    return merged


def _action(s: Sighting, names: tuple[str, ...],
            cfg: LifecycleConfig) -> tuple[Action, str]:
    loc = s.location
    if not names:
        return Action.SKIP, "no DNS name or IP in the certificate to carry over"
    if loc.kind is LocationKind.PCAP:
        return Action.SKIP, "seen only in traffic: find and scan the server first"
    entry = cfg.deploy_for(loc.uri)
    if entry is not None and entry.files:
        return Action.IN_PLACE, f"deploy to the files of the config entry {entry.location!r}"
    if loc.kind is LocationKind.K8S and entry is not None and entry.kubernetes is not None:
        return Action.IN_PLACE, "replace the Secret through the Kubernetes API"
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployer:
    """How ``--apply`` deploys: the config's recipes, the managed store, the pre-deploy checks.

    With ``store`` set, every location deployed becomes a managed certificate.
    """

    config: LifecycleConfig = field(default_factory=LifecycleConfig)
    reload: str | None = None  # --reload: wins over the config's
    store: ManagedStore | None = None
    checks: Sequence[PreDeployCheck] = PRE_DEPLOY_CHECKS
    env: Mapping[str, str] | None = None
    events: EventSink = discard


def execute(items: Sequence[PlanItem], authority: Authority, *, out_dir: str | Path,
            apply_in_place: bool, profile: str = DEFAULT_PROFILE,
            now: dt.datetime | None = None, deployer: Deployer | None = None) -> list[Result]:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    out = Path(out_dir)
    how = deployer or Deployer()
    results: list[Result] = []
    paths: tuple[str, ...]
    for item in items:
        if item.action is Action.SKIP:
            results.append(Result(item=item, status=Status.SKIPPED))
            continue
        try:
            material = issue_material(authority, names=item.names, profile=profile,
                                      requested_by=f"replace:{item.location}")
        except CertwardenError as exc:
            results.append(Result(item=item, status=Status.REFUSED, reason=str(exc)))
            continue
        chain_pem = material.fullchain_pem().decode()
        if item.action is Action.IN_PLACE and apply_in_place:
            results.append(_deploy(item, material, how, profile, stamp))
            continue
        try:
            if item.action is Action.K8S_MANIFEST:
                paths = (_write_secret(item, material, out),)
            else:
                paths = _write_out(item, chain_pem, material.key_pem, out)
        except OSError as exc:
            # Issued and recorded by the CA, but not deployed: say so, with the serial.
            results.append(Result(item=item, status=Status.FAILED, serial=material.serial,
                                  new_sha256=material.sha256,
                                  reason=f"issued but not written: {exc.strerror or exc}"))
            continue
        results.append(Result(item=item, status=Status.WRITTEN, serial=material.serial,
                              new_sha256=material.sha256, paths=paths))
    return results


def _deploy(item: PlanItem, material: Material, how: Deployer, profile: str,
            stamp: str) -> Result:
    started = dt.datetime.now(dt.UTC)
    recipe = recipe_for(item, how.config, reload=how.reload)
    served = item.served
    if item.sighting.location.kind is LocationKind.TLS:
        served = (item.location, *served)  # deployed to files for it: it must serve them
    result = deploy(material, recipe, location=item.location, served=served,
                    checks=how.checks, env=how.env, stamp=stamp)
    base = Result(item=item, status=Status.FAILED, serial=material.serial,
                  new_sha256=material.sha256, paths=result.paths)
    if result.status is DeployStatus.ROLLED_BACK:
        how.events(Event(kind=EventKind.DEPLOY_ROLLED_BACK, subject=item.old_sha256,
                         location=result.location, reason=result.reason or "",
                         names=item.names))
    if not result.ok:
        status = {DeployStatus.ROLLED_BACK: Status.ROLLED_BACK,
                  DeployStatus.REFUSED: Status.REFUSED}.get(result.status, Status.FAILED)
        managed = how.store.managing(item.location) if how.store is not None else None
        if how.store is not None and managed is not None:  # a managed one stays as it was
            _attempt(how.store, managed, AttemptOutcome(str(status)), material.serial,
                     f"{result.location}: {result.reason}", started)
        return dataclasses.replace(base, status=status,
                                   reason=f"{result.location}: {result.reason}")
    managed_id = None
    if how.store is not None:
        managed_id = register(how.store, material, names=item.names, profile=profile,
                              recipe=recipe, locations=(item.location, *item.served),
                              cfg=how.config.renewal)
        _attempt(how.store, managed_id, AttemptOutcome.DEPLOYED, material.serial, None,
                 started)
    return dataclasses.replace(base, status=Status.REPLACED, managed_id=managed_id)


def _attempt(store: ManagedStore, managed_id: int, outcome: AttemptOutcome, serial: str,
             reason: str | None, started: dt.datetime) -> None:
    store.add_attempt(Attempt(managed_id=managed_id, kind=AttemptKind.REPLACE, outcome=outcome,
                              serial=serial, reason=reason, actor="replace",
                              started_at=started, finished_at=dt.datetime.now(dt.UTC)))


def recipe_for(item: PlanItem, config: LifecycleConfig, *, reload: str | None) -> Recipe:
    """The deploy recipe of one location: the config's ``deploy:`` entry, else the files the
    sweep found (certificate + the key beside it)."""
    entry = next((e for u in (item.location, *item.served) if (e := config.deploy_for(u))),
                 None)
    targets: list[DeployTarget] = []
    if entry is not None and entry.files:
        targets = _file_targets(entry.files)
    elif entry is not None and entry.kubernetes is not None and item.sighting.location.path:
        namespace, _, name = item.sighting.location.path.partition("/")
        targets = [DeployTarget(kind=TargetKind.K8S_SECRET, namespace=namespace, name=name,
                          kubeconfig=entry.kubernetes.get("kubeconfig"),
                          context=entry.kubernetes.get("context"))]
    else:
        loc, key = item.sighting.location, item.sighting.key
        if loc.path is None or key is None:  # _action plans IN_PLACE only with both
            raise UsageError(f"{item.location}: nothing to deploy in place")
        der = Path(loc.path).read_bytes()[:1] == b"\x30"
        targets = [DeployTarget(kind=TargetKind.KEY, path=key.path),
                   DeployTarget(kind=TargetKind.CERT, path=loc.path, der=True) if der
                   else DeployTarget(kind=TargetKind.FULLCHAIN, path=loc.path)]
    kwargs: dict[str, float] = {}
    if entry is not None and entry.reload_timeout:
        kwargs["reload_timeout"] = entry.reload_timeout
    if entry is not None and entry.verify_timeout:
        kwargs["verify_timeout"] = entry.verify_timeout
    return Recipe(targets=tuple(targets), reload=reload or (entry.reload if entry else None),
                  verify=entry.verify if entry else (), **kwargs)


def _file_targets(files: Mapping[str, object]) -> list[DeployTarget]:
    extra = {k: files[k] for k in ("password_file", "alias") if k in files}
    out = []
    for kind in (TargetKind.KEY, TargetKind.CERT, TargetKind.CHAIN, TargetKind.FULLCHAIN,
                 TargetKind.PKCS12, TargetKind.JKS):
        path = files.get(str(kind))
        if path:
            opts: dict[str, object] = dict(extra) if kind in (TargetKind.PKCS12,
                                                              TargetKind.JKS) else {}
            if kind is TargetKind.CERT:
                opts["der"] = bool(files.get("der", False))
            out.append(DeployTarget.from_dict({"kind": kind, "path": path, **opts}))
    if files.get("manifest"):
        raise UsageError("deploy files: 'manifest' belongs to Kubernetes locations")
    return out


def _stem(item: PlanItem) -> str:
    return _SAFE.sub("_", item.names[0].replace("*", "wildcard"))[:80] + "-" + item.old_sha256[:8]


def _write_out(item: PlanItem, chain_pem: str, key_pem: bytes, out: Path) -> tuple[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / f"{_stem(item)}.pem", out / f"{_stem(item)}-key.pem"
    write_file(cert_path, chain_pem.encode(), 0o644)
    write_file(key_path, key_pem, 0o600)
    return str(cert_path), str(key_path)


def _write_secret(item: PlanItem, material: Material, out: Path) -> str:
    loc = item.sighting.location
    namespace, _, name = (loc.path or "default/replaced").partition("/")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"secret-{namespace}-{name}.yaml"
    write_file(path, secret_manifest(namespace, name, material).encode(), 0o600)  # a key
    return str(path)


def rescan_files(inventory: Inventory, results: Sequence[Result]) -> int | None:
    """Sweep the files just replaced into the inventory, so it shows the change at once."""
    return sweep_paths(inventory, [p for r in results if r.status is Status.REPLACED
                                   for p in r.paths])


def sweep_paths(inventory: Inventory, paths: Iterable[str]) -> int | None:
    """Sweep ``paths`` into the inventory (one files scan through the recorder)."""
    from certwarden.discovery.files import sweep

    todo = sorted(set(paths))
    if not todo:
        return None
    with inventory.record("files", todo) as rec:
        rec.add_all(sweep(todo))
    return rec.scan_id
