"""Issue 11 item 13 against a real peer: an OpenSSL CA (``openssl ca -revoke / -gencrl``) and
OpenSSL as the OCSP responder, published over HTTP on 127.0.0.1.

``openssl ocsp -port`` binds every interface, which tests must not do; so the responder runs
as ``openssl ocsp -reqin ... -respout ...`` per request behind a small HTTP server bound to
127.0.0.1 (the answer is openssl's, byte for byte). The same server serves the CRL files.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from certwarden.cli import main

pytestmark = pytest.mark.peer("openssl")

CA_CNF = """\
[ca]
default_ca = CA_default
[CA_default]
database = index.txt
{crlnumber}
certificate = {root}.pem
private_key = {root}.key
default_md = sha256
default_crl_days = 7
{crl_extensions}
[crl_ext]
1.3.6.1.4.1.55555.1 = critical,ASN1:NULL
"""
LEAF_EXT = """\
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:{name},IP:127.0.0.1
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
{pointers}
"""


@dataclass
class Publisher:
    """HTTP on 127.0.0.1: GET /<file> from ``root``; POST /ocsp answered by openssl."""

    root: Path
    openssl: str
    requests: list[str] = field(default_factory=list)
    port: int = 0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        pub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet test output

            def _send(self, body: bytes, ctype: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                pub.requests.append(f"GET {self.path}")
                path = pub.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                self._send(path.read_bytes(), "application/pkix-crl")

            def do_POST(self) -> None:
                pub.requests.append(f"POST {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                req, resp = pub.root / "ocsp-req.der", pub.root / "ocsp-resp.der"
                req.write_bytes(body)
                r = subprocess.run([pub.openssl, "ocsp", "-index", "index.txt", "-rsigner",
                                    "root.pem", "-rkey", "root.key", "-CA", "root.pem",
                                    "-reqin", str(req), "-respout", str(resp)],
                                   cwd=pub.root, capture_output=True, timeout=30, check=False)
                if r.returncode != 0:
                    self.send_error(500)
                    return
                self._send(resp.read_bytes(), "application/ocsp-response")

        return Handler


@pytest.fixture
def publisher(tmp_path: Path, openssl: str) -> Iterator[Publisher]:
    pub = Publisher(root=tmp_path / "pki", openssl=openssl)
    pub.root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), pub.handler())
    pub.port = int(server.server_address[1])
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield pub
    server.shutdown()
    server.server_close()


def _run(openssl: str, cwd: Path, *args: str) -> None:
    r = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, (args, r.stderr)


def _make_root(openssl: str, d: Path, name: str, *, crl_sign: bool = True) -> None:
    ku = "keyCertSign,cRLSign" if crl_sign else "keyCertSign"
    _run(openssl, d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={name}",
         "-days", "365", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", f"keyUsage=critical,{ku}", "-addext", "subjectKeyIdentifier=hash")


def _make_leaf(openssl: str, d: Path, name: str, serial: int, *, root: str = "root",
               pointers: str = "") -> Path:
    (d / f"{name}.ext").write_text(LEAF_EXT.format(name=name, pointers=pointers))
    _run(openssl, d, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    _run(openssl, d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{root}.pem", "-CAkey",
         f"{root}.key", "-out", f"{name}.pem", "-days", "30", "-extfile", f"{name}.ext",
         "-extensions", "leaf", "-set_serial", hex(serial))
    return d / f"{name}.pem"


def _crl(openssl: str, d: Path, out: str, *, root: str = "root", number: bool = True,
         critical_unknown: bool = False) -> Path:
    if number and not (d / "crlnumber").exists():
        (d / "crlnumber").write_text("01\n")
    (d / "ca.cnf").write_text(CA_CNF.format(
        root=root, crlnumber="crlnumber = crlnumber" if number else "",
        crl_extensions="crl_extensions = crl_ext" if critical_unknown else ""))
    _run(openssl, d, "ca", "-config", "ca.cnf", "-gencrl", "-out", out)
    return d / out


def _revoke(openssl: str, d: Path, cert: Path, *, root: str = "root") -> None:
    (d / "index.txt").touch()
    (d / "ca.cnf").write_text(CA_CNF.format(root=root, crlnumber="", crl_extensions=""))
    _run(openssl, d, "ca", "-config", "ca.cnf", "-revoke", str(cert), "-crl_reason",
         "keyCompromise")


def _inspect_verdict(leaf: Path, trust: Path, crl: Path,
                     capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    assert main(["inspect", str(leaf), "--trust", str(trust), "--crl", str(crl),
                 "--json"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    return list(first["verification"])


def test_inspect_honours_openssl_crls(publisher: Publisher, openssl: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    d = publisher.root
    _make_root(openssl, d, "root")
    bad = _make_leaf(openssl, d, "bad.test", 0x1001)
    fine = _make_leaf(openssl, d, "fine.test", 0x1002)
    _revoke(openssl, d, bad)
    good_crl = _crl(openssl, d, "root.crl")
    assert "revoked" in _inspect_verdict(bad, d / "root.pem", good_crl, capsys)
    assert _inspect_verdict(fine, d / "root.pem", good_crl, capsys) == ["ok"]
    # A critical extension nobody understands, and a CRL without a CRL number: unusable.
    for crl in (_crl(openssl, d, "ext.crl", critical_unknown=True),
                _crl(openssl, d, "nonum.crl", number=False)):
        verdict = _inspect_verdict(bad, d / "root.pem", crl, capsys)
        assert "bad-crl" in verdict
        assert "revoked" not in verdict
    # A root whose keyUsage lacks cRLSign may not sign CRLs (RFC 5280 §6.3.3 (f)).
    _make_root(openssl, d, "nosign", crl_sign=False)
    leaf = _make_leaf(openssl, d, "n.test", 0x2001, root="nosign")
    (d / "index.txt").unlink()
    _revoke(openssl, d, leaf, root="nosign")
    verdict = _inspect_verdict(leaf, d / "nosign.pem",
                               _crl(openssl, d, "nosign.crl", root="nosign"), capsys)
    assert "bad-crl" in verdict
    assert any("lacks cRLSign" in v for v in verdict)


def _policy(tmp: Path, body: str) -> Path:
    path = tmp / "policy.yaml"
    path.write_text(body)
    return path


def _revoked_findings(tmp: Path, capsys: pytest.CaptureFixture[str],
                      *policy: str) -> tuple[list[dict[str, object]], str]:
    capsys.readouterr()
    assert main(["--db", f"sqlite:///{tmp / 'inv.db'}", "report", "--format", "json",
                 *policy]) == 0
    captured = capsys.readouterr()
    found = json.loads(captured.out)["findings"]
    return [f for f in found if f["rule"] == "revoked"], captured.err


def test_report_fetches_crl_and_ocsp_only_when_the_policy_allows(
        publisher: Publisher, openssl: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the revocation cache
    d, base = publisher.root, f"http://127.0.0.1:{publisher.port}"
    _make_root(openssl, d, "root")
    by_crl = _make_leaf(openssl, d, "crl.test", 0x3001,
                        pointers=f"crlDistributionPoints = URI:{base}/root.crl")
    by_ocsp = _make_leaf(openssl, d, "ocsp.test", 0x3002,
                         pointers=f"authorityInfoAccess = OCSP;URI:{base}/ocsp")
    fine = _make_leaf(openssl, d, "fine.test", 0x3003,
                      pointers=f"authorityInfoAccess = OCSP;URI:{base}/ocsp\n"
                               f"crlDistributionPoints = URI:{base}/root.crl")
    _revoke(openssl, d, by_crl)
    _revoke(openssl, d, by_ocsp)
    _crl(openssl, d, "root.crl")
    certs = tmp_path / "certs"
    certs.mkdir()
    for p in (by_crl, by_ocsp, fine, d / "root.pem"):
        (certs / p.name).write_bytes(p.read_bytes())
    assert main(["--db", f"sqlite:///{tmp_path / 'inv.db'}", "discover", "files",
                 str(certs)]) == 0

    # Default policy: fetching is off, nothing is asked of anyone.
    assert _revoked_findings(tmp_path, capsys)[0] == []
    assert publisher.requests == []
    # Opted in, but 127.0.0.1 is not allowed: still nothing, and it says so.
    closed = _policy(tmp_path, "revocation:\n  fetch: true\n  allow: [crl.example.test]\n")
    found, err = _revoked_findings(tmp_path, capsys, "--policy", str(closed))
    assert found == []
    assert publisher.requests == []
    assert "not on the allow list" in err
    # Allowed: the CRL says crl.test is revoked, openssl's OCSP answer says ocsp.test is.
    opened = _policy(tmp_path, "revocation:\n  fetch: true\n  allow: [127.0.0.1/32]\n")
    found, err = _revoked_findings(tmp_path, capsys, "--policy", str(opened))
    by_subject = {str(f["subject"]): f for f in found}
    assert set(by_subject) == {"CN=crl.test", "CN=ocsp.test"}, (found, err)
    assert by_subject["CN=ocsp.test"]["evidence"]["source"] == "ocsp"  # type: ignore[index]
    assert by_subject["CN=crl.test"]["evidence"]["origin"] == f"{base}/root.crl"  # type: ignore[index]
    assert by_subject["CN=crl.test"]["severity"] == "critical"
    assert "keyCompromise" in str(by_subject["CN=crl.test"]["message"])
    assert "GET /root.crl" in publisher.requests
    assert "POST /ocsp" in publisher.requests
    # Cached until nextUpdate: a second run asks for the CRL no more.
    crl_gets = publisher.requests.count("GET /root.crl")
    _revoked_findings(tmp_path, capsys, "--policy", str(opened))
    assert publisher.requests.count("GET /root.crl") == crl_gets


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_scan_reads_the_ocsp_response_openssl_s_server_staples(
        publisher: Publisher, openssl: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``s_server -status_file``: the staple is openssl's own OCSP answer (revoked)."""
    import time

    d = publisher.root
    _make_root(openssl, d, "root")
    leaf = _make_leaf(openssl, d, "stapled.test", 0x4001)
    _revoke(openssl, d, leaf)
    _run(openssl, d, "ocsp", "-issuer", "root.pem", "-cert", str(leaf), "-reqout", "req.der",
         "-no_nonce")
    _run(openssl, d, "ocsp", "-index", "index.txt", "-rsigner", "root.pem", "-rkey",
         "root.key", "-CA", "root.pem", "-reqin", "req.der", "-respout", "staple.der")
    port = _free_port()
    server = subprocess.Popen([openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-cert",
                               str(leaf), "-key", str(d / "stapled.test.key"), "-cert_chain",
                               str(d / "root.pem"), "-status_file", str(d / "staple.der"),
                               "-quiet"], cwd=d, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import socket

        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "s_server did not listen"
            time.sleep(0.1)
        db = ["--db", f"sqlite:///{tmp_path / 'inv.db'}"]

        def scan(*extra: str) -> dict[str, object]:
            capsys.readouterr()
            assert main([*db, "scan", f"127.0.0.1:{port}", "--sni", "stapled.test",
                         "--starttls", "none", "--json-out", "-", *extra]) == 0
            [endpoint] = json.loads(capsys.readouterr().out)
            return dict(endpoint)

        plain = scan()
        assert "revoked" not in {f["rule"] for f in plain["findings"]}  # type: ignore[attr-defined]
        stapled = scan("--ocsp-staple")
        [finding] = [f for f in stapled["findings"]  # type: ignore[attr-defined]
                     if f["rule"] == "revoked"]
        assert "ocsp-stapled" in finding["message"]
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert publisher.requests == []  # a staple needs no fetch
