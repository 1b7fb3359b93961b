"""``RevocationFetcher``: only allowed addresses, bounded size and time, no redirects, cached
until nextUpdate (memory and disk). A real HTTP server on 127.0.0.1 plays the CRL publisher."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization

from certwarden.cli.demo_forge import forge
from certwarden.discovery.revocation_fetch import RevocationFetcher
from certwarden.errors import ConnectError

NOW = dt.datetime.now(dt.UTC)
CA = forge(subject="CN=Fetch CA", sans=(), ca=True)


def _crl_der(next_update: dt.datetime) -> bytes:
    return (cx509.CertificateRevocationListBuilder()
            .issuer_name(cx509.load_der_x509_certificate(CA.der).subject)
            .last_update(NOW - dt.timedelta(hours=1)).next_update(next_update)
            .add_extension(cx509.CRLNumber(1), critical=False)
            .sign(CA.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


class Origin:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.routes: dict[str, tuple[int, bytes, float]] = {}  # path -> status, body, delay
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                origin.hits.append(self.path)
                status, body, delay = origin.routes.get(self.path, (404, b"", 0.0))
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere.crl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for i in range(0, len(body), 512):
                    self.wfile.write(body[i:i + 512])
                    self.wfile.flush()
                    time.sleep(delay)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def origin() -> Iterator[Origin]:
    o = Origin()
    yield o
    o.server.shutdown()
    o.server.server_close()


def test_only_listed_hosts_and_networks_are_fetched(origin: Origin) -> None:
    f = RevocationFetcher(allow=["crl.example.test", "10.1.0.0/16"])
    assert f.refusal("http://crl.example.test/a.crl") is None
    assert f.refusal("http://10.1.2.3/a.crl") is None
    assert "not in the policy's revocation allow list" in str(f.refusal(f"{origin.base}/a"))
    assert "not on the policy's revocation allow list" in str(
        f.refusal("http://other.example.test/a.crl"))
    assert "only http(s)" in str(f.refusal("ldap://crl.example.test/cn=x"))
    with pytest.raises(ConnectError, match="not fetched"):
        f.crl(f"{origin.base}/a.crl")
    assert origin.hits == []  # refused before any connection
    assert f.fetches == 0


def test_size_time_and_redirect_bounds(origin: Origin) -> None:
    origin.routes["/big.crl"] = (200, b"x" * 4096, 0.0)
    origin.routes["/slow.crl"] = (200, b"x" * 4096, 0.4)
    origin.routes["/moved.crl"] = (302, b"", 0.0)
    f = RevocationFetcher(allow=["127.0.0.1"], max_bytes=1024, timeout=0.6)
    with pytest.raises(ConnectError, match="byte limit"):
        f.crl(f"{origin.base}/big.crl")
    slow = RevocationFetcher(allow=["127.0.0.1"], timeout=0.6)
    with pytest.raises(ConnectError):
        slow.crl(f"{origin.base}/slow.crl")
    with pytest.raises(ConnectError, match="HTTP 302"):
        f.crl(f"{origin.base}/moved.crl")
    assert "/elsewhere.crl" not in origin.hits  # redirects are not followed


def test_cached_until_next_update_in_memory_and_on_disk(origin: Origin, tmp_path: Path) -> None:
    origin.routes["/ca.crl"] = (200, _crl_der(NOW + dt.timedelta(days=1)), 0.0)
    url = f"{origin.base}/ca.crl"
    f = RevocationFetcher(allow=["127.0.0.0/8"], cache_dir=tmp_path)
    assert f.crl(url).number == 1
    assert f.crl(url).number == 1
    assert origin.hits == ["/ca.crl"]
    again = RevocationFetcher(allow=["127.0.0.0/8"], cache_dir=tmp_path)
    assert again.crl(url).issuer == "CN=Fetch CA"
    assert origin.hits == ["/ca.crl"]  # read from the disk cache
    # Past its nextUpdate, the cached CRL is fetched anew.
    later = RevocationFetcher(allow=["127.0.0.0/8"], cache_dir=tmp_path,
                              clock=lambda: NOW + dt.timedelta(days=2))
    later.crl(url)
    assert origin.hits == ["/ca.crl", "/ca.crl"]
