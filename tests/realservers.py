"""Real servers on 127.0.0.1 for tests: Debian's nginx, Postfix and Dovecot, each with a
private configuration in a temp dir (their own pid, log, queue and state files; nothing of
the system's /etc is read or changed), serving the certificate and key files a test gives.

Fixtures (each is a factory: call it to start a server; every server started is stopped at
the end of the test, also when the test fails). A missing binary skips the test locally
with the reason and fails it under ``CI=true`` (``tests.conftest.require_tool``).

``nginx_server(cert, key, *, port=None) -> Served``
    nginx in the foreground (``nginx -p PREFIX -c CONF``, ``daemon off;``, one process)
    serving ``cert`` (a PEM file: the leaf, then any intermediates, as nginx sends them) with
    ``key`` over TLS on ``127.0.0.1:port`` (a free port when None). ``Served.port``;
    ``Served.restart()`` re-reads the files (after ``replace --apply``).

``postfix_server(cert, key, *, port=None) -> Served``
    Postfix (``postfix -c DIR start``: its own main.cf/master.cf, queue, data dir and
    maillog) with smtpd on ``127.0.0.1:port`` offering STARTTLS with ``cert`` / ``key``.
    Needs root, as Debian runs it (the master drops to the ``postfix`` user); skips otherwise.

``dovecot_server(cert, key, *, imap_port=None, imaps_port=None) -> Served``
    Dovecot (``dovecot -F -c FILE``, foreground) with IMAP + STARTTLS on ``imap_port`` and
    implicit-TLS IMAPS on ``imaps_port``. ``Served.ports == {"imap": ..., "imaps": ...}``,
    ``Served.port`` is the IMAPS one.

``req_x509(cert, key, *, cn, days, sans=None, key_mode=0o600)``
    Makes a certificate the way the nginx/Postfix/Dovecot HOWTOs tell users to:
    ``openssl req -x509 -newkey rsa:2048 -nodes`` (OpenSSL marks it CA:TRUE).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import require_tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, *, timeout: float = 15.0, log: Path | None = None,
              proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}: {tail}")


def req_x509(cert: Path, key: Path, *, cn: str, days: int, sans: str | None = None,
             key_mode: int = 0o600) -> None:
    openssl = require_tool("openssl")
    args = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
            "-out", str(cert), "-days", str(days), "-subj", f"/CN={cn}"]
    if sans:
        args += ["-addext", f"subjectAltName={sans}"]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    os.chmod(key, key_mode)


@dataclass
class Served:
    """A running server: where it listens, its files, and how to stop or restart it."""

    name: str
    port: int
    root: Path
    log: Path
    ports: dict[str, int] = field(default_factory=dict)
    _start: Callable[[], None] = field(repr=False, default=lambda: None)
    _stop: Callable[[], None] = field(repr=False, default=lambda: None)

    def stop(self) -> None:
        self._stop()

    def restart(self) -> None:
        self._stop()
        self._start()


def _popen(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


class _Servers:
    """Everything started in one test, stopped in reverse order at its end."""

    def __init__(self) -> None:
        self.started: list[Served] = []

    def add(self, served: Served) -> Served:
        self.started.append(served)
        return served

    def close(self) -> None:
        for s in reversed(self.started):
            with contextlib.suppress(Exception):
                s.stop()


@pytest.fixture
def _real_servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    servers.close()


# ---- nginx ----------------------------------------------------------------------------

def start_nginx(root: Path, cert: Path, key: Path, *, port: int | None = None) -> Served:
    nginx = require_tool("nginx", path="/usr/sbin/nginx")
    port = port or free_port()
    for d in ("logs", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    conf, log = root / "nginx.conf", root / "logs" / "error.log"
    temps = " ".join(f"{k}_temp_path {root}/tmp;" for k in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(f"""\
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {log};
events {{ worker_connections 64; }}
http {{
  access_log off;
  {temps}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{ return 200 "ok\\n"; }}
  }}
}}
""")
    proc: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        proc[:] = [_popen([nginx, "-p", str(root), "-c", str(conf), "-e", str(log)], log)]
        wait_port(port, log=log, proc=proc[0])

    def stop() -> None:
        _terminate(proc[0] if proc else None)

    start()
    return Served(name="nginx", port=port, root=root, log=log, _start=start, _stop=stop)


@pytest.fixture
def nginx_server(tmp_path: Path, _real_servers: _Servers) -> Callable[..., Served]:
    count = iter(range(1000))

    def make(cert: Path, key: Path, *, port: int | None = None) -> Served:
        root = tmp_path / f"nginx-{next(count)}"
        return _real_servers.add(start_nginx(root, cert, key, port=port))
    return make


# ---- Postfix --------------------------------------------------------------------------

# Debian's master.cf, cut to what smtpd needs to answer EHLO and STARTTLS (chroot off: the
# queue is a temp dir, not /var/spool/postfix).
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


def start_postfix(root: Path, cert: Path, key: Path, *, port: int | None = None) -> Served:
    postfix = require_tool("postfix", path="/usr/sbin/postfix")
    if os.geteuid() != 0:
        pytest.skip("Postfix's master must start as root (it drops to the postfix user)")
    port = port or free_port()
    conf = root / "conf"
    for d in ("conf", "queue", "data"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.chown(root / "data", "postfix")
    log = root / "maillog"
    (conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.example.test
mydestination =
alias_maps =
alias_database =
maillog_file_prefixes = {root}
maillog_file = {log}
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
""")
    (conf / "master.cf").write_text(_MASTER_CF.format(port=port))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([postfix, "-c", str(conf), *args], capture_output=True,
                              text=True, timeout=60, check=False)

    def start() -> None:
        done = run("start")
        if done.returncode != 0:
            tail = log.read_text()[-1500:] if log.exists() else ""
            raise RuntimeError(f"postfix start failed: {done.stderr.strip()} {tail}")
        wait_port(port, log=log)

    def stop() -> None:
        run("stop")
        pid = root / "queue" / "pid" / "master.pid"
        deadline = time.monotonic() + 15
        while pid.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    start()
    return Served(name="postfix", port=port, root=root, log=log, _start=start, _stop=stop)


def _service_root(name: str) -> Path:
    """A temp dir the server's own users (postfix, dovecot, dovenull) can traverse: pytest's
    tmp_path sits under a 0700 directory of ours."""
    root = Path(tempfile.mkdtemp(prefix=f"certwarden-{name}-"))
    root.chmod(0o755)
    return root


def _removing(served: Served) -> Served:
    stop = served._stop

    def stop_and_remove() -> None:
        try:
            stop()
        finally:
            shutil.rmtree(served.root, ignore_errors=True)
    served._stop = stop_and_remove
    return served


@pytest.fixture
def postfix_server(_real_servers: _Servers) -> Callable[..., Served]:
    def make(cert: Path, key: Path, *, port: int | None = None) -> Served:
        root = _service_root("postfix")
        return _real_servers.add(_removing(start_postfix(root, cert, key, port=port)))
    return make


# ---- Dovecot --------------------------------------------------------------------------

def start_dovecot(root: Path, cert: Path, key: Path, *, imap_port: int | None = None,
                  imaps_port: int | None = None) -> Served:
    dovecot = require_tool("dovecot", path="/usr/sbin/dovecot")
    imap_port, imaps_port = imap_port or free_port(), imaps_port or free_port()
    for d in ("run", "state", "home"):
        (root / d).mkdir(parents=True, exist_ok=True)
    conf, log = root / "dovecot.conf", root / "dovecot.log"
    dh = Path("/usr/share/dovecot/dh.pem")
    conf.write_text(f"""\
base_dir = {root}/run
state_dir = {root}/state
instance_name = certwarden-test-{imaps_port}
log_path = {log}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
{f"ssl_dh = <{dh}" if dh.exists() else ""}
default_internal_user = dovecot
default_login_user = dovenull
mail_location = mbox:{root}/home/mail
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
  chroot =
}}
""")
    proc: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        proc[:] = [_popen([dovecot, "-F", "-c", str(conf)], root / "stdout.log")]
        wait_port(imaps_port, log=log, proc=proc[0])
        wait_port(imap_port, log=log, proc=proc[0])

    def stop() -> None:
        _terminate(proc[0] if proc else None)

    start()
    return Served(name="dovecot", port=imaps_port, root=root, log=log,
                  ports={"imap": imap_port, "imaps": imaps_port}, _start=start, _stop=stop)


@pytest.fixture
def dovecot_server(_real_servers: _Servers) -> Callable[..., Served]:
    def make(cert: Path, key: Path, *, imap_port: int | None = None,
             imaps_port: int | None = None) -> Served:
        root = _service_root("dovecot")
        return _real_servers.add(_removing(start_dovecot(root, cert, key, imap_port=imap_port,
                                                         imaps_port=imaps_port)))
    return make
