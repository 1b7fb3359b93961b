"""CA throughput vs its physical limit and OCSP throughput vs openssl's responder, in one run.

    .venv/bin/python bench/ca.py [--seconds 3] [--requests 20000] [--connections 16]

1. ``openssl speed -seconds S ecdsap256``: raw ECDSA P-256 signs/s (the physical limit).
2. cryptography: the same leaf (same extensions) built + signed per second, nothing stored.
3. certwarden: durable issuances/s on SQLite (committed before returned), one-at-a-time
   and as group commits (``Authority.issue_many``).
4. OCSP: ``curl --parallel`` POSTing pre-built RFC 5019 requests (1000 serials, 10% revoked) at
   ``certwarden serve`` and at ``openssl ocsp -index ... -port`` holding the same data.
   (openssl 3.0's ``-port`` takes no host and listens on all addresses; only loopback
   traffic reaches it, for the seconds the run lasts.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from certwarden.ca import Authority, IssueRequest
from certwarden.ca.hierarchy import init_ca
from certwarden.ca.keys import load_key_file
from certwarden.store.ca_ledger import SqlLedger

PASS = b"bench-passphrase"


def openssl_speed(seconds: int) -> float:
    out = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "ecdsap256"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)", out)
    if not m:
        raise SystemExit(f"cannot parse openssl speed output:\n{out}")
    return float(m.group(1))


def bare_build_sign(seconds: float) -> float:
    """The same leaf certwarden issues (same extensions), built and signed, nothing stored."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench CA")])
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP,
        x509.UniformResourceIdentifier("http://127.0.0.1:8080/ocsp"))])
    cdp = x509.CRLDistributionPoints([x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier("http://127.0.0.1:8080/crl/bench.crl")],
        relative_name=None, reasons=None, crl_issuer=None)])
    ku = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, key_cert_sign=False,
                       crl_sign=False, encipher_only=False, decipher_only=False)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        now = dt.datetime.now(dt.UTC)
        name = f"h{n}.internal"
        (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(issuer).public_key(leaf_key)
         .serial_number(int.from_bytes(os.urandom(16), "big") | 1)
         .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
         .add_extension(ku, True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
         .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key), False)
         .add_extension(aki, False).add_extension(aia, False).add_extension(cdp, False)
         .sign(ca_key, hashes.SHA256()))
        n += 1
    return n / (time.perf_counter() - start)


def durable(authority: Authority, seconds: float, batch: int) -> float:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        if batch == 1:
            authority.issue(public_key=key, names=[f"d{n}.internal"], requested_by="bench")
            n += 1
        else:
            out = authority.issue_many([IssueRequest(public_key=key, names=[f"b{n}-{i}.internal"],
                                                     requested_by="bench") for i in range(batch)])
            n += sum(1 for o in out if not isinstance(o, Exception))
    return n / (time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], body: bytes) -> None:
    # Probe with a real request: an empty probe connection would stall openssl's
    # single-threaded responder, which reads it without a timeout.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"responder {proc.args[0]} exited with {proc.returncode}")
        try:
            check_answer(port, body)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answers on {port}")


def curl_config(bodies: list[Path], port: int, total: int, path: Path, *,
                keep_alive: bool) -> None:
    # openssl's responder answers one request per connection and then accepts the next
    # one; a kept-alive connection would wait forever. "Connection: close" for both.
    close = "" if keep_alive else 'header = "Connection: close"\n'
    entries = []
    for i in range(total):
        entries.append(f'url = "http://127.0.0.1:{port}/ocsp"\n'
                       f'data-binary = "@{bodies[i % len(bodies)]}"\n{close}'
                       'header = "Content-Type: application/ocsp-request"\n'
                       'output = "/dev/null"\n'
                       'write-out = "%{http_code}\\n"')
    path.write_text("\nnext\n".join(entries) + "\n")


def run_load(config: Path, parallel: int) -> tuple[float, int, int]:
    """(responses/s, answered 200, failed) for one ``curl --parallel`` run."""
    start = time.perf_counter()
    out = subprocess.run(["curl", "-s", "--max-time", "10", "--parallel", "--parallel-max",
                          str(parallel),
                          "-K", str(config)], capture_output=True, text=True,
                         check=False).stdout
    elapsed = time.perf_counter() - start
    codes = out.split()
    ok = sum(1 for c in codes if c == "200")
    return ok / elapsed, ok, len(codes) - ok


def check_answer(port: int, body: bytes) -> str:
    # Plain HTTP/1.0 over a socket: openssl's responder stalls on urllib's request shape.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /ocsp HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/ocsp-request\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    resp = ocsp.load_der_ocsp_response(data.split(b"\r\n\r\n", 1)[1])
    if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return str(resp.response_status)
    return str(resp.certificate_status.name)


def ocsp_bench(work: Path, authority: Authority, url: str, requests: int,
               connections: int) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    issued = [c for c in authority.issue_many([IssueRequest(public_key=key,
                                                            names=[f"o{i}.internal"])
                                               for i in range(1000)])
              if not isinstance(c, Exception)]
    revoked = {c.serial for c in issued[::10]}
    for s in revoked:
        authority.revoke(s, "keyCompromise", requested_by="bench")
    inter_pem = work / "int.pem"
    inter_pem.write_text(authority.issuer.pem)
    key_ref = authority.issuer.key_ref.removeprefix("file:")
    clear_key = work / "int.key"  # openssl's responder needs the key in clear: bench only
    fd = os.open(clear_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(load_key_file(Path(key_ref), PASS).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    lines = []
    for c in issued:
        leaf = x509.load_der_x509_certificate(c.leaf_der)
        exp = leaf.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
        subj = "/CN=" + c.record.names[0]
        if c.serial in revoked:
            lines.append(f"R\t{exp}\t{time.strftime('%y%m%d%H%M%SZ', time.gmtime())},"
                         f"keyCompromise\t{c.serial.upper()}\tunknown\t{subj}")
        else:
            lines.append(f"V\t{exp}\t\t{c.serial.upper()}\tunknown\t{subj}")
    (work / "index.txt").write_text("\n".join(lines) + "\n")
    (work / "index.txt.attr").write_text("unique_subject = no\n")
    inter = authority.issuer.certificate
    bodies = []
    for c in random.sample(issued, 1000):
        leaf = x509.load_der_x509_certificate(c.leaf_der)
        # RFC 5019 2.1.1: CertIDs use SHA-1, which every OCSP client sends
        bodies.append(ocsp.OCSPRequestBuilder().add_certificate(leaf, inter,
                                                                hashes.SHA1())  # noqa: S303
                      .build().public_bytes(serialization.Encoding.DER))
    body_files = []
    for i, b in enumerate(bodies):
        body_files.append(work / f"req{i}.der")
        body_files[-1].write_bytes(b)

    env = {**os.environ, "CERTWARDEN_DATABASE_URL": url,
           "CERTWARDEN_CA_PASSPHRASE": PASS.decode()}
    ours_port, theirs_port, workers_port = free_port(), free_port(), free_port()
    exe = str(Path(sys.executable).parent / "certwarden")
    ours = subprocess.Popen([exe, "serve", "--http", f"127.0.0.1:{ours_port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours2 = subprocess.Popen([exe, "serve", "--http", f"127.0.0.1:{workers_port}",
                              "--workers", "2"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    theirs_log = (work / "openssl-ocsp.log").open("wb")
    theirs = subprocess.Popen(["openssl", "ocsp", "-index", str(work / "index.txt"),
                               "-port", str(theirs_port), "-rsigner", str(inter_pem),
                               "-rkey", str(clear_key), "-CA", str(inter_pem), "-nmin", "60"],
                              # it logs every request to stderr: a file, not a pipe that fills
                              stdout=subprocess.DEVNULL, stderr=theirs_log)
    try:
        wait_ready(ours_port, ours, bodies[0])
        wait_ready(theirs_port, theirs, bodies[0])
        wait_ready(workers_port, ours2, bodies[0])
        time.sleep(2)  # let serve pre-sign its answers (the warm thread)
        revoked_ints = {int(s, 16) for s in revoked}
        statuses = {}
        for name, port in (("certwarden", ours_port), ("openssl", theirs_port)):
            # the same answers from both before timing them
            t0 = time.perf_counter()
            statuses[name] = [check_answer(port, b) for b in bodies[:50]]
            print(f"  {name}: 50 sequential answers in {time.perf_counter() - t0:.2f}s")
        if statuses["certwarden"] != statuses["openssl"]:
            raise SystemExit(f"responders disagree: {statuses}")
        n_rev = sum(ocsp.load_der_ocsp_request(b).serial_number in revoked_ints
                    for b in bodies[:50])
        print(f"  both responders agree on 50 sampled serials ({n_rev} revoked)")
        # wrk is not used: its probe connection (opened and dropped before the run) makes
        # openssl 3.0's single-threaded responder spin on EOF forever. curl --parallel is
        # the same client for both.
        results = {}
        runs = (("certwarden", ours_port, False), ("openssl", theirs_port, False),
                ("certwarden keep-alive", ours_port, True),
                ("certwarden --workers 2", workers_port, False))
        for name, port, keep_alive in runs:
            cfg = work / f"{name.replace(' ', '-')}.curl"
            curl_config(body_files, port, requests, cfg, keep_alive=keep_alive)
            results[name] = run_load(cfg, connections)
    finally:
        for p in (ours, ours2):
            p.terminate()
            p.communicate(timeout=20)
        theirs.terminate()
        try:
            theirs.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            theirs.kill()
            theirs.communicate()
        theirs_log.close()
    print(f"OCSP responses/s (curl --parallel-max {connections}, {requests} POSTs over 1000 "
          f"serials, no nonce, Connection: close unless marked):")
    for name, (rps, ok, failed) in results.items():
        print(f"  {name:22} {rps:8.0f}/s   ({ok} answered, {failed} failed)")
    ours_rps, theirs_rps = results["certwarden"][0], results["openssl"][0]
    if theirs_rps:
        print(f"  ratio certwarden/openssl = {ours_rps / theirs_rps:.2f} (Connection: close), "
              f"{results['certwarden keep-alive'][0] / theirs_rps:.2f} (keep-alive)   "
              f"(goal >= 10000/s and > 1)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    for tool in ("openssl", "curl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is required")
    speed = openssl_speed(args.seconds)
    bare = bare_build_sign(args.seconds)
    with tempfile.TemporaryDirectory(prefix="cw-bench-") as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'bench.db'}"
        ledger = SqlLedger.open(url)
        init_ca(ledger, name="Bench CA", key_dir=work / "keys", passphrase=PASS)
        authority = Authority.open(ledger, passphrase=lambda: PASS)
        one = durable(authority, args.seconds, 1)
        grouped = durable(authority, args.seconds, 256)
        print(f"ECDSA P-256 signs/s (openssl speed)            {speed:10.0f}")
        print(f"cryptography bare build+sign/s                 {bare:10.0f}   "
              f"= {bare / speed:.2f} x openssl sign")
        print(f"certwarden durable issuances/s, one per commit {one:10.0f}   "
              f"= {one / bare:.2f} x bare build+sign")
        print(f"certwarden durable issuances/s, group of 256   {grouped:10.0f}   "
              f"= {grouped / bare:.2f} x bare build+sign   (goal >= 3000/s and >= 0.5)")
        ledger.close()
        # OCSP on a fresh CA holding exactly the data both responders serve
        url2 = f"sqlite:///{work / 'ocsp.db'}"
        ledger2 = SqlLedger.open(url2)
        init_ca(ledger2, name="OCSP Bench CA", key_dir=work / "keys2", passphrase=PASS)
        ocsp_bench(work, Authority.open(ledger2, passphrase=lambda: PASS), url2,
                   args.requests, args.connections)
        ledger2.close()


if __name__ == "__main__":
    main()
