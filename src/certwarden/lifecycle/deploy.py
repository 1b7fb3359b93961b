"""Deploy with verification and rollback: the ONE mechanism ``replace --apply`` and every
renewal go through.

    result = deploy(material, recipe, location=uri, served=("tls://127.0.0.1:8443",))

1. pre-deploy checks (``PreDeployCheck``: the pin guard plugs in here) may refuse: nothing
   is touched;
2. every target is snapshotted and file targets are backed up (``backup_path``);
3. the targets are written atomically, the key first;
4. the reload hook runs (shell command, ``CERTWARDEN_*`` paths in its environment, killed
   with its process group after its timeout);
5. every ``tls://`` location that served the old certificate, and every ``verify`` endpoint,
   must serve the new certificate's SHA-256 within ``verify_timeout``.

If 4 or 5 fails, every target written is restored from its snapshot and the reload hook runs
again, so the service serves what it served before; the result says ``rolled-back`` and
names the location and the reason. Nothing is lost either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from certwarden.errors import UsageError
from certwarden.lifecycle.deploy_targets import (
    FILE_KINDS,
    DeployError,
    DeployTarget,
    KubeSecrets,
    Material,
    Snapshot,
    TargetKind,
    restore,
    snapshot,
    write,
    write_file,
)

DEFAULT_RELOAD_TIMEOUT = 60.0  # seconds: nginx/Postfix reload in well under one
DEFAULT_VERIFY_TIMEOUT = 30.0  # seconds: workers of a graceful reload drain old connections
_POLL = 0.25  # seconds between verification handshakes
_STABLE = 3  # handshakes in a row that must serve the new certificate


class DeployRefused(DeployError):  # noqa: N818 - an outcome, like the CA's RequestRefused
    """A pre-deploy check said no (a pin would break, say): nothing was touched."""


class PreDeployCheck(Protocol):
    """Runs before anything is written; raises ``DeployRefused`` to stop the deploy."""

    def __call__(self, material: Material, recipe: Recipe, *, location: str) -> None: ...


# The checks every deploy runs unless its caller passes its own (replace and renewals use
# this): the place where the pin guard (lifecycle/pins.py) is registered.
PRE_DEPLOY_CHECKS: tuple[PreDeployCheck, ...] = ()


class DeployStatus(StrEnum):
    DEPLOYED = "deployed"
    ROLLED_BACK = "rolled-back"
    REFUSED = "refused"
    FAILED = "failed"  # could not even start (a target unreadable): nothing was touched


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipe:
    """How one managed certificate is deployed: stored with it, replayed at every renewal."""

    targets: tuple[DeployTarget, ...]
    reload: str | None = None
    verify: tuple[str, ...] = ()  # tls://host:port[?sni=..&starttls=..]
    reload_timeout: float = DEFAULT_RELOAD_TIMEOUT
    verify_timeout: float = DEFAULT_VERIFY_TIMEOUT

    def __post_init__(self) -> None:
        for uri in self.verify:
            parse_tls(uri)
        if not (self.reload_timeout > 0 and self.verify_timeout > 0):
            raise UsageError("deploy timeouts must be above 0 seconds")

    def as_dict(self) -> dict[str, Any]:
        return {"targets": [t.as_dict() for t in self.targets], "reload": self.reload,
                "verify": list(self.verify), "reload_timeout": self.reload_timeout,
                "verify_timeout": self.verify_timeout}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        return cls(targets=tuple(DeployTarget.from_dict(t) for t in data.get("targets") or ()),
                   reload=data.get("reload") or None, verify=tuple(data.get("verify") or ()),
                   reload_timeout=float(data.get("reload_timeout", DEFAULT_RELOAD_TIMEOUT)),
                   verify_timeout=float(data.get("verify_timeout", DEFAULT_VERIFY_TIMEOUT)))


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployResult:
    status: DeployStatus
    location: str  # where it failed (or the managed location when it did not)
    reason: str | None = None
    verified: tuple[str, ...] = ()  # endpoints seen serving the new certificate
    backups: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is DeployStatus.DEPLOYED

    def line(self) -> str:
        """The one line a failure is reported with."""
        return f"{self.status}: {self.location}: {self.reason}"


def backup_path(path: Path, stamp: str) -> Path:
    """Where the backup of ``path`` goes — the one place that decides it:
    ``DIR/.certwarden-backup/NAME.STAMP`` (the directory made 0700 if missing), where the file
    sweep does not look (beside the live files, backups were swept as live self-signed
    certificates and exposed keys, and planned for replacement themselves: issue 11). Never an
    existing file: two deploys within one second (a replace, then a forced renewal) keep both."""
    from certwarden.discovery.files import BACKUP_DIR

    folder = path.parent / BACKUP_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    candidate, n = folder / f"{path.name}.{stamp}", 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{path.name}.{stamp}-{n}"
    return candidate


def deploy(material: Material, recipe: Recipe, *, location: str, served: Sequence[str] = (),
           checks: Sequence[PreDeployCheck] = PRE_DEPLOY_CHECKS,
           env: Mapping[str, str] | None = None,
           stamp: str | None = None,
           kube: Callable[[DeployTarget], KubeSecrets] = KubeSecrets) -> DeployResult:
    """Deploy ``material`` by ``recipe``; verify; roll back on failure (see the module doc).

    ``served``: the ``tls://`` locations that served the old certificate; ``env``: the base
    environment of the reload hook (the caller's, from the edge).
    """
    for check in checks:
        try:
            check(material, recipe, location=location)
        except DeployRefused as exc:
            return DeployResult(status=DeployStatus.REFUSED, location=exc.location,
                                reason=exc.reason)
    stamp = stamp or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    apis = {t: kube(t) for t in recipe.targets if t.kind is TargetKind.K8S_SECRET}
    try:
        snaps = [snapshot(t, kube=apis.get(t)) for t in recipe.targets]
        backups = _backups(snaps, stamp)
    except DeployError as exc:
        return DeployResult(status=DeployStatus.FAILED, location=exc.location,
                            reason=exc.reason)
    # The key first: a service restarted between two writes then fails loudly on a
    # mismatch instead of serving the old certificate with a key that no longer matches.
    ordered = sorted(snaps, key=lambda s: s.target.kind is not TargetKind.KEY)
    written: list[Snapshot] = []
    hook_env = hook_environment(material, recipe, location=location, base=env or {})
    # Without a reload step nothing makes a running service load the new files, so the
    # endpoints that served the old certificate are not expected to change yet (the user
    # restarts the service); only the recipe's explicit ``verify:`` endpoints are checked.
    endpoints = tuple(dict.fromkeys([*served, *recipe.verify])) if recipe.reload else \
        tuple(recipe.verify)
    paths = tuple(str(t.path) for t in recipe.targets if t.path)
    try:
        for snap in ordered:
            written.append(snap)
            write(snap.target, material, snap, kube=apis.get(snap.target))
        if recipe.reload:
            run_hook(recipe.reload, env=hook_env, timeout=recipe.reload_timeout,
                     location=location)
        verified = verify(endpoints, material.sha256, timeout=recipe.verify_timeout)
    except DeployError as exc:
        _rollback(written, recipe, hook_env, location, apis)
        return DeployResult(status=DeployStatus.ROLLED_BACK, location=exc.location,
                            reason=exc.reason, backups=backups, paths=paths)
    return DeployResult(status=DeployStatus.DEPLOYED, location=location, verified=verified,
                        backups=backups, paths=paths)


def _backups(snaps: Sequence[Snapshot], stamp: str) -> tuple[str, ...]:
    out: list[str] = []
    for snap in snaps:
        if not snap.existed or snap.target.kind not in FILE_KINDS:
            continue
        live = Path(str(snap.target.path))
        try:
            path = backup_path(live, stamp)
            st = live.stat()
            # The original's mode and owner: a backup is no wider than what it copies.
            write_file(path, snap.data, snap.mode, owner=(st.st_uid, st.st_gid))
        except OSError as exc:
            raise DeployError(str(snap.target.path),
                              f"cannot back it up: {exc.strerror or exc}") from None
        out.append(str(path))
    return tuple(out)


def _rollback(written: Sequence[Snapshot], recipe: Recipe, env: Mapping[str, str],
              location: str, apis: Mapping[DeployTarget, KubeSecrets]) -> None:
    # Best effort on every target: one that cannot be restored must not keep the others
    # from being restored (its backup file is still there).
    for snap in reversed(written):
        try:
            restore(snap, kube=apis.get(snap.target))
        except (OSError, DeployError):
            continue
    if recipe.reload:
        # The failure that made us roll back is what the result reports.
        with contextlib.suppress(DeployError):
            run_hook(recipe.reload, env=env, timeout=recipe.reload_timeout, location=location)


def hook_environment(material: Material, recipe: Recipe, *, location: str,
                     base: Mapping[str, str]) -> dict[str, str]:
    """certbot-style deploy-hook variables: where the files are, what was deployed.

    Our own inherited ``CERTWARDEN_*`` variables are dropped: the CA passphrase and PINs
    travel in them, and a reload hook has no business with those.
    """
    paths = {t.kind: str(t.path) for t in recipe.targets if t.path}
    base = {k: v for k, v in base.items() if not k.startswith("CERTWARDEN_")}
    cert = (paths.get(TargetKind.CERT) or paths.get(TargetKind.FULLCHAIN)
            or paths.get(TargetKind.PKCS12) or paths.get(TargetKind.JKS) or "")
    return {**base,
            "CERTWARDEN_CERT_PATH": cert,
            "CERTWARDEN_KEY_PATH": paths.get(TargetKind.KEY, ""),
            "CERTWARDEN_CHAIN_PATH": paths.get(TargetKind.CHAIN, ""),
            "CERTWARDEN_FULLCHAIN_PATH": paths.get(TargetKind.FULLCHAIN, ""),
            "CERTWARDEN_LOCATION": location,
            "CERTWARDEN_SERIAL": material.serial,
            "CERTWARDEN_SHA256": material.sha256}


def run_hook(command: str, *, env: Mapping[str, str], timeout: float, location: str) -> None:
    """Run the operator's reload command; a hang is killed (whole process group)."""
    with tempfile.TemporaryFile() as out:
        # The command is the operator's own shell line, like certbot's --deploy-hook.
        # Output goes to a file, not a pipe: a daemon the hook starts may keep a pipe open.
        proc = subprocess.Popen(command, shell=True, env=dict(env), stdin=subprocess.DEVNULL,  # noqa: S602
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise DeployError(location, f"reload {command!r} did not finish within "
                              f"{timeout:g}s: killed") from None
        if code != 0:
            out.seek(0)
            tail = [ln for ln in out.read()[-4096:].decode("utf-8", "replace").splitlines()
                    if ln.strip()]
            raise DeployError(location, f"reload {command!r} failed (exit {code})"
                              + (f": {' '.join(tail[-1].split())[:200]}" if tail else ""))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --- verification --------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class TlsEndpoint:
    uri: str
    host: str
    port: int
    sni: str | None
    starttls: str | None


def parse_tls(uri: str) -> TlsEndpoint:
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tls" or not parts.hostname or port is None:
        raise UsageError(f"not a tls://host:port location: {uri!r}")
    query = parse_qs(parts.query)
    sni, starttls = query.get("sni"), query.get("starttls")
    return TlsEndpoint(uri=uri, host=parts.hostname, port=port, sni=sni[0] if sni else None,
                       starttls=starttls[0] if starttls else None)


def served_sha256(uri: str, *, timeout: float) -> str:
    """The SHA-256 of the leaf ``uri`` serves now; ``DeployError`` when no handshake."""
    import hashlib

    from certwarden.discovery.net import Scanner, ScanOptions, StarttlsMode
    from certwarden.discovery.targets import Endpoint, Starttls
    from certwarden.records import OutcomeStatus

    ep = parse_tls(uri)
    proto = Starttls(ep.starttls) if ep.starttls else None
    opts = ScanOptions(concurrency=1, connect_timeout=timeout, handshake_timeout=timeout,
                       starttls=proto or StarttlsMode.NONE, alpn=())
    result = asyncio.run(Scanner(opts).probe(Endpoint(host=ep.host, port=ep.port,
                                                      sni=ep.sni or None, starttls=proto)))
    if result.status is not OutcomeStatus.OK or not result.chain:
        raise DeployError(uri, result.error or "no certificate served")
    return hashlib.sha256(result.chain[0]).hexdigest()


def verify(endpoints: Sequence[str], sha256: str, *, timeout: float) -> tuple[str, ...]:
    """Each endpoint must serve ``sha256`` on ``_STABLE`` handshakes in a row before
    ``timeout`` seconds have passed: after a graceful reload the old workers drain for a
    moment, and one lucky handshake with a new worker does not mean the old one is gone."""
    deadline = time.monotonic() + timeout
    for uri in endpoints:
        last, streak = "not checked", 0
        while True:
            left = deadline - time.monotonic()
            try:
                got = served_sha256(uri, timeout=max(0.5, min(5.0, left)))
                streak = streak + 1 if got == sha256 else 0
                if streak >= _STABLE:
                    break
                last = (f"still serves {got[:16]}…, not the new {sha256[:16]}…" if not streak
                        else f"served the new certificate {streak} of {_STABLE} times in a row")
            except DeployError as exc:
                last, streak = exc.reason, 0
            if time.monotonic() >= deadline:
                raise DeployError(uri, f"verification failed after {timeout:g}s: {last}")
            time.sleep(_POLL)
    return tuple(endpoints)
