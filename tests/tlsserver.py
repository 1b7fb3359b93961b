"""A real TLS server on 127.0.0.1 for tests: Python's ssl module in a thread."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType


class TLSServer:
    """Serves ``chain_pem`` + ``key_pem`` on 127.0.0.1:<free port>; says hello, then closes."""

    def __init__(self, chain_pem: str, key_pem: bytes, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "chain.pem").write_text(chain_pem)
        (workdir / "key.pem").write_bytes(key_pem)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(workdir / "chain.pem", workdir / "key.pem")
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            try:
                conn.settimeout(5)
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello\n")
            except (ssl.SSLError, OSError):
                pass

    def __enter__(self) -> TLSServer:
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
