"""Full ACME orders per second: certwarden's ACME server against Debian's Pebble, same run.

One load client (our async client, ``certwarden.acme.client``, tight 10 ms polling) drives
complete orders -- account reuse, newOrder, http-01 validation against a loopback responder,
finalize, certificate download -- with N concurrent workers, first against certwarden, then
against Pebble (``PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0``). Both
servers speak HTTPS on 127.0.0.1 with a certificate from the same test CA, resolve names
through the same loopback DNS server, and validate against the same http-01 responder.

    .venv/bin/python bench/acme.py [--seconds 15] [--concurrency 16]

certwarden runs as one uvicorn process over SQLite (WAL) in a temporary directory, issuing
from its own private CA (``certwarden ca init``; ``--issuer test-ca`` for the tests' in-memory
CA); its rate limits are switched off, as Pebble has none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' CA and DNS server (acme_support)

import httpx  # noqa: E402

from acme_client import AcmeClient, AcmeClientError  # noqa: E402
from acme_support import DnsZone, MiniCA, free_port  # noqa: E402


def serve_certwarden(args: argparse.Namespace) -> None:
    """The server process (``--serve-certwarden``): uvicorn + the ACME router."""
    import uvicorn
    from fastapi import FastAPI

    from certwarden.acme.context import AcmeSettings
    from certwarden.acme.validation import ValidatorSettings
    from certwarden.web.acme import build_acme_server, mount_acme

    settings = AcmeSettings(
        validator=ValidatorSettings(resolver=args.resolver, http_port=args.http_port,
                                    tls_port=args.http_port + 1),
        ip_limit=None, account_limit=None, new_order_limit=None, new_account_ip_limit=None,
        validation_workers=16, nonces="database" if args.server_procs > 1 else "memory")
    if args.issuer == "ca":  # the private CA itself (file key, SQL ledger)
        from certwarden.acme.authority import AuthorityIssuer, authority_profiles
        from certwarden.ca import Authority
        from certwarden.store.ca_ledger import SqlLedger

        authority = Authority.open(SqlLedger.open(args.db),
                                   passphrase=lambda: os.environ["CERTWARDEN_CA_PASSPHRASE"]
                                   .encode())
        issuer: Any = AuthorityIssuer(authority, profiles=authority_profiles(authority))
    else:
        issuer = MiniCA()
    server = build_acme_server(db_url=args.db, issuer=issuer, settings=settings)
    app = FastAPI()
    mount_acme(app, server)
    # Several server processes share one port through SO_REUSEPORT (the kernel spreads
    # connections); their nonces then live in the database so any process accepts them.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(app, ssl_certfile=args.cert, ssl_keyfile=args.key,
                            log_level="warning", access_log=False, lifespan="off", ws="none")
    uvicorn.Server(config).run(sockets=[sock])


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)


async def http01_responder(tokens: dict[str, str], port: int) -> asyncio.Server:
    """A minimal HTTP/1.1 responder for /.well-known/acme-challenge/<token>."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                body = tokens.get(path.rsplit("/", 1)[-1], "").encode()
                status = b"200 OK" if body else b"404 Not Found"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def drive(directory: str, root_pem: Path, *, seconds: float, concurrency: int,
                tokens: Any, label: str) -> tuple[Tally, float]:
    ctx = ssl.create_default_context(cafile=str(root_pem))
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    tally = Tally()
    async with httpx.AsyncClient(verify=ctx, limits=limits, timeout=30) as http:
        clients = [AcmeClient(http, directory, poll_interval=0.01) for _ in range(concurrency)]
        await asyncio.gather(*(c.register(contact=["mailto:bench@example.test"])
                               for c in clients))

        def publish(token: str, key_auth: str, _name: str) -> None:
            tokens[token] = key_auth

        deadline = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def worker(c: AcmeClient) -> None:
            while time.perf_counter() < deadline:
                name = f"o{next(counter)}.{label}.bench.test"
                t0 = time.perf_counter()
                try:
                    await c.issue([name], answer=publish)
                    tally.ok += 1
                    tally.latencies.append(time.perf_counter() - t0)
                except (AcmeClientError, httpx.HTTPError) as exc:
                    tally.failed += 1
                    key = (str(exc) or repr(exc))[:90]
                    tally.errors[key] = tally.errors.get(key, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        elapsed = time.perf_counter() - t0
    return tally, elapsed


def drive_process(directory: str, root_pem: str, seconds: float, concurrency: int,
                  tokens: Any, label: str) -> tuple[Tally, float]:
    """One load-client process (``--clients`` > 1): its own event loop and connections."""
    return asyncio.run(drive(directory, Path(root_pem), seconds=seconds,
                             concurrency=concurrency, tokens=tokens, label=label))


async def load(directory: str, root_pem: Path, args: argparse.Namespace, tokens: Any,
               label: str) -> tuple[Tally, float]:
    if args.clients <= 1:
        return await drive(directory, root_pem, seconds=args.seconds,
                           concurrency=args.concurrency, tokens=tokens, label=label)
    from concurrent.futures import ProcessPoolExecutor

    per = max(1, args.concurrency // args.clients)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(args.clients) as pool:
        parts = await asyncio.gather(*(loop.run_in_executor(
            pool, drive_process, directory, str(root_pem), args.seconds, per, tokens,
            f"{label}{i}") for i in range(args.clients)))
    total = Tally()
    for tally, _ in parts:
        total.ok += tally.ok
        total.failed += tally.failed
        total.latencies += tally.latencies
        for k, v in tally.errors.items():
            total.errors[k] = total.errors.get(k, 0) + v
    return total, max(elapsed for _, elapsed in parts)


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def report(label: str, tally: Tally, elapsed: float) -> float:
    rate = tally.ok / elapsed if elapsed else 0.0
    lat = sorted(tally.latencies) or [0.0]
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"{label:<11} {tally.ok:6d} orders in {elapsed:5.1f}s = {rate:7.1f} orders/s  "
          f"failed {tally.failed}  p50 {p50 * 1000:6.0f} ms  p99 {p99 * 1000:6.0f} ms")
    for err, n in sorted(tally.errors.items(), key=lambda kv: -kv[1])[:5]:
        print(f"            {n} x {err}")
    return rate


async def main_async(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="certwarden-bench-acme-"))
    ca = MiniCA()
    cert, key = ca.server_cert(["127.0.0.1", "localhost"], tmp)
    root = tmp / "root.pem"
    root.write_text(ca.root_pem)
    zone = DnsZone(["bench.test"])
    # Several client processes publish tokens the one responder serves: a managed dict.
    manager = multiprocessing.Manager() if args.clients > 1 else None
    tokens: Any = manager.dict() if manager is not None else {}
    http_port = free_port()
    responder = await http01_responder(tokens, http_port)
    procs: list[subprocess.Popen[bytes]] = []
    rates: dict[str, float] = {}
    try:
        with zone.serving() as (dns_host, dns_port):
            resolver = f"{dns_host}:{dns_port}"
            if args.only in (None, "certwarden"):
                os.environ["CERTWARDEN_CA_PASSPHRASE"] = "bench-only"  # noqa: S105 - throwaway CA
                os.environ["CERTWARDEN_CA_DIR"] = str(tmp / "ca-keys")
                if args.issuer == "ca":
                    subprocess.run([str(Path(sys.executable).parent / "certwarden"), "--db",
                                    f"sqlite:///{tmp / 'acme.db'}", "ca", "init", "--name",
                                    "Bench CA"], check=True, capture_output=True)
                port = free_port()
                proc = subprocess.Popen([sys.executable, __file__, "--serve-certwarden",
                                         "--port", str(port), "--resolver", resolver,
                                         "--http-port", str(http_port),
                                         "--db", f"sqlite:///{tmp / 'acme.db'}",
                                         "--cert", str(cert), "--key", str(key),
                                         "--server-procs", str(args.server_procs),
                                         "--issuer", args.issuer])
                procs.append(proc)
                wait_port(port, proc)
                for _ in range(args.server_procs - 1):
                    procs.append(subprocess.Popen(proc.args))
                time.sleep(1.0 if args.server_procs > 1 else 0)
                tally, elapsed = await load(f"https://127.0.0.1:{port}/acme/directory", root,
                                            args, tokens, "cw")
                rates["certwarden"] = report("certwarden", tally, elapsed)
                for p in procs:
                    p.terminate()
                    p.wait(10)
            pebble = shutil.which("pebble")
            if args.only in (None, "pebble") and pebble:
                port = free_port()
                config = tmp / "pebble.json"
                config.write_text(json.dumps({"pebble": {
                    "listenAddress": f"127.0.0.1:{port}",
                    "managementListenAddress": f"127.0.0.1:{free_port()}",
                    "certificate": str(cert), "privateKey": str(key),
                    "httpPort": http_port, "tlsPort": free_port(),
                    "ocspResponderURL": "", "externalAccountBindingRequired": False}}))
                pebble_log = (tmp / "pebble.log").open("wb")
                env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
                       "PEBBLE_AUTHZREUSE": "0"}
                proc = subprocess.Popen([pebble, "-config", str(config), "-dnsserver", resolver],
                                        env=env, stdout=pebble_log, stderr=subprocess.STDOUT)
                procs.append(proc)
                wait_port(port, proc)
                tally, elapsed = await load(f"https://127.0.0.1:{port}/dir", root, args, tokens,
                                            "pb")
                rates["pebble"] = report("pebble", tally, elapsed)
                if tally.failed and args.keep_logs:
                    print((tmp / "pebble.log").read_text(errors="replace")[-3000:])
            elif args.only in (None, "pebble"):
                print("pebble         not installed (apt-get install pebble); no comparison")
    finally:
        responder.close()
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
        if manager is not None:
            manager.shutdown()
    if rates.get("pebble") and "certwarden" in rates:
        print(f"ratio certwarden/pebble = {rates.get('certwarden', 0) / rates['pebble']:.2f}x "
              f"(goal >= 2x), concurrency {args.concurrency} in {args.clients} client "
              f"process(es), {args.seconds:.0f}s each")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--clients", type=int, default=1,
                    help="load-client processes sharing --concurrency (default 1)")
    ap.add_argument("--only", choices=("certwarden", "pebble"))
    ap.add_argument("--issuer", choices=("ca", "test-ca"), default="ca",
                    help="certwarden's private CA (default) or the tests' in-memory CA")
    ap.add_argument("--server-procs", type=int, default=1,
                    help="certwarden server processes on one port (database nonces if > 1)")
    ap.add_argument("--keep-logs", action="store_true", help="print Pebble's log on failures")
    ap.add_argument("--serve-certwarden", action="store_true", help=argparse.SUPPRESS)
    for opt in ("--port", "--http-port"):
        ap.add_argument(opt, type=int, help=argparse.SUPPRESS)
    for opt in ("--resolver", "--db", "--cert", "--key"):
        ap.add_argument(opt, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_certwarden:
        serve_certwarden(args)
        return 0
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
