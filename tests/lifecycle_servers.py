"""Real servers for the lifecycle journeys: Debian's nginx and Postfix on 127.0.0.1, each with
a private prefix / config directory in a temp dir (their own pid files and queues), and a
client that keeps handshaking while the certificate changes under it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from certwarden.x509 import create as mk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def self_signed_files(cert: Path, key: Path) -> str:
    """A self-signed localhost certificate and its key; returns its SHA-256."""
    ss = mk.self_signed(["localhost", "127.0.0.1"])
    cert.write_text(ss.certificate.pem())
    mk.write_private(key, ss.key_pem())
    return ss.certificate.sha256


@dataclass
class Nginx:
    nginx: str
    prefix: Path
    port: int = field(default_factory=free_port)

    @property
    def conf(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def cert(self) -> Path:
        return self.prefix / "certs" / "server.pem"

    @property
    def key(self) -> Path:
        return self.prefix / "certs" / "server-key.pem"

    @property
    def reload_cmd(self) -> str:
        return f"{self.nginx} -p {self.prefix} -c {self.conf} -s reload"

    def start(self) -> str:
        (self.prefix / "certs").mkdir(parents=True)
        (self.prefix / "logs").mkdir()
        (self.prefix / "tmp").mkdir()
        sha = self_signed_files(self.cert, self.key)
        p = self.prefix
        temps = " ".join(f"{k}_temp_path {p}/tmp;" for k in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.conf.write_text(f"""
daemon on;
pid {p}/nginx.pid;
error_log {p}/logs/error.log;
worker_processes 1;
events {{ worker_connections 128; }}
http {{
  access_log off;
  {temps}
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {self.cert};
    ssl_certificate_key {self.key};
    location / {{ return 200 "ok\\n"; }}
  }}
}}
""")
        subprocess.run([self.nginx, "-p", str(p), "-c", str(self.conf)], check=True,
                       capture_output=True, timeout=30)
        wait_port(self.port)
        return sha

    def stop(self) -> None:
        subprocess.run([self.nginx, "-p", str(self.prefix), "-c", str(self.conf), "-s", "quit"],
                       capture_output=True, timeout=30, check=False)
        pid = self.prefix / "nginx.pid"
        deadline = time.monotonic() + 10
        while pid.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class Postfix:
    """Postfix with its own config dir, queue and log file; STARTTLS on a loopback port.

    Needs root (Postfix's master drops to the ``postfix`` user), as Debian runs it.
    """

    postfix: str
    root: Path
    port: int = field(default_factory=free_port)

    @property
    def confdir(self) -> Path:
        return self.root / "conf"

    @property
    def cert(self) -> Path:
        return self.confdir / "smtpd.pem"

    @property
    def key(self) -> Path:
        return self.confdir / "smtpd-key.pem"

    @property
    def reload_cmd(self) -> str:
        return f"{self.postfix} -c {self.confdir} reload"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.postfix, "-c", str(self.confdir), *args],
                              capture_output=True, text=True, timeout=60, check=False)

    def start(self) -> str:
        r = self.root
        for d in ("conf", "queue", "data"):
            (r / d).mkdir(parents=True)
        shutil.chown(r / "data", "postfix")
        sha = self_signed_files(self.cert, self.key)
        (self.confdir / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {r}/queue
data_directory = {r}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = localhost
mydestination =
alias_maps =
alias_database =
maillog_file_prefixes = {r}
maillog_file = {r}/maillog
smtpd_tls_cert_file = {self.cert}
smtpd_tls_key_file = {self.key}
smtpd_tls_security_level = may
""")
        (self.confdir / "master.cf").write_text(_MASTER_CF.format(port=self.port))
        done = self._run("start")
        if done.returncode != 0:
            log = (r / "maillog").read_text() if (r / "maillog").exists() else ""
            raise RuntimeError(f"postfix start failed: {done.stderr} {log[-2000:]}")
        wait_port(self.port)
        return sha

    def stop(self) -> None:
        self._run("stop")


def served_sha256(port: int, *, starttls: bool = False) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return hashlib.sha256(_handshake(port, ctx, starttls=starttls)).hexdigest()


def _handshake(port: int, ctx: ssl.SSLContext, *, starttls: bool) -> bytes:
    if starttls:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.starttls(context=ctx)
            der = smtp.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
            return bytes(der or b"")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        return bytes(tls.getpeercert(binary_form=True) or b"")


@dataclass
class Prober:
    """Handshakes in a loop with a context that trusts ONLY the private root, verifying the
    name; counts successes, failures (with why) and which certificates it was served."""

    port: int
    root_pem: Path
    starttls: bool = False
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        # With a cafile, the default context loads no system roots: the private root only.
        self.ctx = ssl.create_default_context(cafile=str(self.root_pem))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sha = hashlib.sha256(_handshake(self.port, self.ctx,
                                                starttls=self.starttls)).hexdigest()
            except (OSError, ssl.SSLError, smtplib.SMTPException) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            else:
                self.ok += 1
                if not self.seen or self.seen[-1] != sha:
                    self.seen.append(sha)
            time.sleep(0.02)

    def __enter__(self) -> Prober:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


@contextlib.contextmanager
def running(server: Nginx | Postfix) -> Iterator[str]:
    sha = server.start()
    try:
        yield sha
    finally:
        server.stop()


def is_root() -> bool:
    return os.geteuid() == 0
