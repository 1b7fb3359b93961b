"""Helpers shared by the CA peer tests: run the CLI, a live ``certwarden serve``, openssl."""

from __future__ import annotations

import importlib.util
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

CERTWARDEN = str(Path(sys.executable).parent / "certwarden")


def _root_conftest() -> ModuleType:
    # tests/ is not a package and "conftest" names several modules: load the root one by path.
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("certwarden_root_conftest", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


require_tool = _root_conftest().require_tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([CERTWARDEN, *argv], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, (argv, r.stderr)
    return r


def run(*argv: str, cwd: Path, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@contextmanager
def serving(env: dict[str, str], cwd: Path, *extra: str,
            scheme: str = "http", ctx: ssl.SSLContext | None = None) -> Iterator[str]:
    port = free_port()
    flag = "--https" if scheme == "https" else "--http"
    proc = subprocess.Popen([CERTWARDEN, "serve", flag, f"127.0.0.1:{port}", *extra], env=env,
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2, context=ctx):  # noqa: S310
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    _out, err = proc.communicate(timeout=5)
                    raise AssertionError(f"serve did not come up: {err}") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def split_chain(pem_path: Path) -> tuple[Path, Path]:
    """(leaf.pem, intermediate.pem) beside a leaf-first chain file."""
    text = pem_path.read_text()
    parts = [p + "-----END CERTIFICATE-----\n" for p in text.split("-----END CERTIFICATE-----")
             if "BEGIN" in p]
    leaf, inter = pem_path.with_suffix(".leaf.pem"), pem_path.with_suffix(".int.pem")
    leaf.write_text(parts[0].lstrip())
    inter.write_text(parts[1].lstrip())
    return leaf, inter


def tls_roundtrip(chain_pem: Path, key_pem: Path, root_pem: Path, hostname: str) -> str:
    """A Python ssl server with the issued chain; a client trusting only ``root_pem``."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(chain_pem), str(key_pem))
    client_ctx = ssl.create_default_context(cafile=str(root_pem))  # only our root
    client_ctx.load_default_certs = None  # type: ignore[assignment, method-assign]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    result: dict[str, str] = {}

    def serve_one() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"hello from the issued cert")
        except (ssl.SSLError, OSError) as exc:
            result["server_error"] = repr(exc)

    t = threading.Thread(target=serve_one, daemon=True)
    t.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                client_ctx.wrap_socket(raw, server_hostname=hostname) as tls:
            data = tls.recv(100).decode()
    finally:
        t.join(timeout=10)
        listener.close()
    return data


def base_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CERTWARDEN_DATABASE_URL"}
    env.update({"XDG_DATA_HOME": str(tmp / "data"), "CERTWARDEN_CA_PASSPHRASE": "peer-pass"})
    return env
