"""The demo's last act: the sandbox's self-signed services move under the private CA and stay
managed — replaced with verification, one renewed, one rollback shown.

Each self-signed service of the estate is served again from its own certificate and key files
by a small TLS server on 127.0.0.1 that reloads them when its reload command (``touch
RELOAD``) asks, the way nginx does on ``-s reload``. Everything else is the real thing:
``ca init``, ``scan``, ``discover files``, ``replace --apply --reload``, ``renew``,
``managed list``, on a fresh inventory in the demo's workdir.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from certwarden.cli.demo_estate import HOST, DemoEstate
from certwarden.x509 import Kind


@dataclass
class ReloadingServer:
    """Serves ``cert`` + ``key``; reloads them (new handshakes only) when ``flag`` appears."""

    name: str
    directory: Path
    port: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def cert(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def key(self) -> Path:
        return self.directory / "key.pem"

    @property
    def flag(self) -> Path:
        return self.directory / "RELOAD"

    @property
    def reload_cmd(self) -> str:
        return f"touch {shlex.quote(str(self.flag))}"

    def start(self) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, self.key)
        self.sock = socket.create_server((HOST, 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, name=f"demo-{self.name}",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if self.flag.exists():
                self.flag.unlink()
                with contextlib.suppress(ssl.SSLError, OSError):  # a bad pair: keep the old
                    fresh = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    fresh.load_cert_chain(self.cert, self.key)
                    self.ctx = fresh
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with contextlib.suppress(ssl.SSLError, OSError), conn:
                conn.settimeout(2)
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"HTTP/1.0 200 OK\r\n\r\nok\n")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sock.close()


def _run(url: str, *argv: str) -> tuple[int, str, str]:
    """One ``certwarden`` command, run as a user runs it (a process of its own)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "certwarden.cli", "--db", url, *argv],
                          capture_output=True, text=True, timeout=300, check=False)
    return done.returncode, done.stdout, done.stderr


def run_lifecycle(estate: DemoEstate, workdir: Path) -> list[str]:
    """Replace, renew, roll back; returns the lines to show."""
    base = workdir / "lifecycle"
    shutil.rmtree(base, ignore_errors=True)  # a fresh CA and inventory every run
    base.mkdir(parents=True)
    db = base / "lifecycle.db"
    url = f"sqlite:///{db}"
    secret = base / "ca-passphrase"
    secret.write_text("demo lifecycle passphrase\n")
    secret.chmod(0o600)
    pw = ["--passphrase-file", str(secret)]
    servers = []
    for svc in estate.services:
        if svc.leaf.certificate.kind not in (Kind.SELF_SIGNED, Kind.SELF_ISSUED):
            continue
        s = ReloadingServer(name=svc.name, directory=base / svc.name)
        s.directory.mkdir(exist_ok=True)
        s.cert.write_bytes(svc.leaf.pem())
        s.key.write_bytes(svc.leaf.key_pem())
        s.key.chmod(0o600)
        servers.append(s)
    lines: list[str] = []
    for s in servers:
        s.start()
    try:
        code, _, err = _run(url, "ca", "init", "--name", "Demo Lifecycle CA", "--key-dir",
                            str(base / "ca"), *pw)
        if code:
            return [f"lifecycle: ca init failed: {err.strip()}"]
        _run(url, "scan", "--starttls", "none", *(f"{HOST}:{s.port}" for s in servers))
        _run(url, "discover", "files", str(base))
        good, bad = servers[:-1], servers[-1]
        for s in good:
            code, out, err = _run(url, "replace", "--apply", "--json", "--location",
                                  f"file://{s.cert}", "--reload", s.reload_cmd, *pw)
            for r in json.loads(out or "[]"):
                lines.append(f"replaced {s.name}: {r['status']}, serial {r['serial']}, "
                             f"verified at {', '.join(r['served']) or '(no endpoint)'}")
        code, out, err = _run(url, "replace", "--apply", "--location", f"file://{bad.cert}",
                              "--reload", f"{bad.reload_cmd} && echo 'config test failed' "
                              "&& exit 1", *pw)
        lines.append(f"replace {bad.name} with a failing reload: exit {code}; "
                     f"{err.strip().removeprefix('certwarden: ')}")
        code, out, err = _run(url, "renew", "--force", "--json", "--location",
                              f"file://{good[0].cert}", *pw)
        for r in json.loads(out or "[]"):
            lines.append(f"renewed {good[0].name}: {r['status']}, new serial {r['serial']}, "
                         f"next renewal {r['next_renewal']}")
        code, out, _ = _run(url, "managed", "list", "--json")
        for m in json.loads(out or "[]"):
            lines.append(f"managed #{m['id']} {', '.join(m['names'])}: {m['state']}, next "
                         f"renewal {m['next_renewal']}, attempts: "
                         + ", ".join(f"{a['kind']} {a['outcome']}" for a in m["attempts"]))
    finally:
        for s in servers:
            s.stop()
    return lines
