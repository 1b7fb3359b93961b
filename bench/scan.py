"""Scan throughput: certwarden scan vs nmap ssl-cert vs sslyze vs a plain asyncio leaf grab.

    .venv/bin/python bench/scan.py [--endpoints 200] [--repeat 3] [--no-sslyze]

Starts a loopback estate in a child process (N implicit-TLS endpoints with varied
certificates: ECDSA P-256 and RSA-2048 leaves, some sent with an intermediate; plus a few
SMTP STARTTLS endpoints), then measures certificates per second, in one run, for:

- plain:      an asyncio ``ssl`` loop that only grabs the leaf (the ceiling for Python here)
- certwarden: ``certwarden scan`` into a fresh SQLite inventory, full chains, JSON out
              (in-process through ``main(argv)``; a subprocess figure with interpreter start
              is printed too)
- nmap:       ``nmap -Pn -n -sT --script +ssl-cert``
- sslyze:     ``sslyze --certinfo`` (installed into its own venv under /tmp, never into the
              project's dependencies)

Every tool's leaf fingerprints are checked against the estate: a fast wrong answer is no
answer. The STARTTLS endpoints are scanned by certwarden alone (nmap only knows STARTTLS by
well-known port, the plain loop not at all) and reported as a correctness line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the loopback servers and certificate helpers
sys.path.insert(0, str(ROOT / "src"))

SSLYZE_VENV = Path(tempfile.gettempdir()) / "certwarden-bench-sslyze"


# --- the estate (child process) ------------------------------------------------------------

def _estate(n: int, n_starttls: int, conn: mp.connection.Connection) -> None:
    from discovery_support import issue, server_context, starttls_server

    tmp = Path(tempfile.mkdtemp(prefix="certwarden-bench-"))
    ca = issue("Bench Root", ca=True)
    inter = issue("Bench Intermediate", issuer=ca, ca=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # Peers probe and hang up mid-handshake (nmap, sslyze): not the estate's news to print.
    loop.set_exception_handler(lambda _loop, _ctx: None)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    servers = []
    expected: dict[int, str] = {}
    starttls: dict[int, str] = {}

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1)
        except OSError:
            pass
        finally:
            writer.transport.abort()

    async def start() -> None:
        for i in range(n + n_starttls):
            rsa = i % 4 == 1  # a quarter RSA-2048, the rest ECDSA P-256
            with_chain = i % 3 == 0
            leaf = issue(f"svc{i}.bench.test", issuer=inter if with_chain else None,
                         rsa_bits=2048 if rsa else 0)
            ctx = server_context(tmp, leaf, *((inter,) if with_chain else ()))
            if i < n:
                server = await asyncio.start_server(hold, "127.0.0.1", 0, ssl=ctx, backlog=512)
                port = server.sockets[0].getsockname()[1]
                expected[port] = leaf.record.sha256
            else:
                server = await asyncio.start_server(starttls_server("smtp", ctx),
                                                    "127.0.0.1", 0, backlog=64)
                port = server.sockets[0].getsockname()[1]
                starttls[port] = leaf.record.sha256
            servers.append(server)

    loop.run_until_complete(start())
    conn.send((expected, starttls))
    loop.add_reader(conn.fileno(), loop.stop)  # parent closes the pipe: stop
    loop.run_forever()
    shutil.rmtree(tmp, ignore_errors=True)


# --- the tools --------------------------------------------------------------------------------

async def _plain(ports: list[int], concurrency: int) -> dict[int, str]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sem = asyncio.Semaphore(concurrency)
    out: dict[int, str] = {}

    async def one(port: int) -> None:
        async with sem:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, ssl=ctx), 10)
            except (OSError, TimeoutError):
                return
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            out[port] = hashlib.sha256(der).hexdigest()
            writer.transport.abort()

    await asyncio.gather(*(one(p) for p in ports))
    return out


def run_plain(ports: list[int]) -> dict[int, str]:
    return asyncio.run(_plain(ports, 200))


def run_certwarden(ports: list[int], work: Path, *, starttls: str = "none") -> dict[int, str]:
    from certwarden.cli import main

    db = work / "inventory.db"  # created (schema migrated) once, before any timing
    out = work / "certwarden.json"
    code = main(["--db", f"sqlite:///{db}", "scan", "127.0.0.1", "--ports",
                 ",".join(map(str, ports)), "--starttls", starttls, "--timeout", "10",
                 "--json-out", str(out)])
    if code != 0:
        raise SystemExit(f"certwarden scan exited {code}")
    return {o["port"]: o["chain"][0]["sha256"] for o in json.loads(out.read_text())
            if o["chain"]}


def run_certwarden_subprocess(ports: list[int], work: Path) -> float:
    exe = Path(sys.executable).parent / "certwarden"
    db = work / "inv-sub.db"
    t0 = time.perf_counter()
    subprocess.run([str(exe), "--db", f"sqlite:///{db}", "scan", "127.0.0.1", "--ports",
                    ",".join(map(str, ports)), "--starttls", "none", "--json-out",
                    str(work / "sub.json")], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def run_nmap(ports: list[int]) -> dict[int, str]:
    """nmap reports SHA-1; mapped back to SHA-256 through the estate's own table."""
    proc = subprocess.run(["nmap", "-Pn", "-n", "-sT", "--script", "+ssl-cert", "-p",
                           ",".join(map(str, ports)), "127.0.0.1", "-oX", "-"],
                          capture_output=True, text=True, check=True)
    out: dict[int, str] = {}
    # nmap output on our own loopback run, not untrusted input.
    for port in ET.fromstring(proc.stdout).iter("port"):  # noqa: S314
        for elem in port.iter("elem"):
            if elem.get("key") == "pem" and elem.text:
                der = ssl.PEM_cert_to_DER_cert(elem.text.strip() + "\n")
                out[int(port.get("portid", "0"))] = hashlib.sha256(der).hexdigest()
    return out


def sslyze_bin() -> Path | None:
    exe = SSLYZE_VENV / "bin" / "sslyze"
    if exe.exists():
        return exe
    print(f"installing sslyze into {SSLYZE_VENV} (its own venv) ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(SSLYZE_VENV)], check=True)
        subprocess.run([str(SSLYZE_VENV / "bin" / "pip"), "install", "-q", "sslyze"],
                       check=True, stdout=subprocess.DEVNULL)
    except subprocess.CalledProcessError as exc:
        print(f"sslyze: install failed ({exc}); skipped", file=sys.stderr)
        return None
    return exe if exe.exists() else None


def run_sslyze(exe: Path, ports: list[int], work: Path) -> dict[int, str]:
    out_file = work / "sslyze.json"
    subprocess.run([str(exe), "--certinfo", f"--json_out={out_file}",
                    *(f"127.0.0.1:{p}" for p in ports)],
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = json.loads(out_file.read_text())
    out: dict[int, str] = {}
    for result in data.get("server_scan_results", []):
        port = result["server_location"]["port"]
        info = ((result.get("scan_result") or {}).get("certificate_info") or {}).get("result")
        if not info:
            continue
        chain = info["certificate_deployments"][0]["received_certificate_chain"]
        der = ssl.PEM_cert_to_DER_cert(chain[0]["as_pem"])
        out[port] = hashlib.sha256(der).hexdigest()
    return out


# --- the run ------------------------------------------------------------------------------

def measure(name: str, fn: object, expected: dict[int, str], repeat: int,
            ) -> tuple[float, int]:
    times, correct = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        got = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
        correct = sum(1 for p, h in expected.items() if got.get(p) == h)
        wrong = sum(1 for p, h in got.items() if p in expected and expected[p] != h)
        if wrong:
            raise SystemExit(f"{name}: {wrong} wrong fingerprints")
    elapsed = statistics.median(times)
    rate = correct / elapsed
    print(f"{name:<11} {elapsed:7.3f} s  {correct:4d}/{len(expected)} leaves correct  "
          f"{rate:8.1f} certs/s   (median of {repeat})")
    return rate, correct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoints", type=int, default=200)
    ap.add_argument("--starttls", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-sslyze", action="store_true")
    ap.add_argument("--no-nmap", action="store_true")
    args = ap.parse_args()

    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(target=_estate,
                                          args=(args.endpoints, args.starttls, child))
    proc.start()
    expected, starttls = parent.recv()
    ports = sorted(expected)
    work = Path(tempfile.mkdtemp(prefix="certwarden-bench-run-"))
    print(f"estate: {len(ports)} TLS endpoints + {len(starttls)} SMTP STARTTLS on 127.0.0.1, "
          f"{os.cpu_count()} CPUs (shared)")
    try:
        from certwarden.store.inventory import Inventory

        Inventory.open(f"sqlite:///{work / 'inventory.db'}").close()  # the one-time schema
        rates: dict[str, float] = {}
        rates["plain"], _ = measure("plain", lambda: run_plain(ports), expected, args.repeat)
        rates["certwarden"], _ = measure("certwarden", lambda: run_certwarden(ports, work),
                                         expected, args.repeat)
        sub = run_certwarden_subprocess(ports, work)
        print(f"{'':<11} (as a subprocess, interpreter start and imports included: "
              f"{sub:.3f} s, {len(ports) / sub:.1f} certs/s)")
        if not args.no_nmap and shutil.which("nmap"):
            rates["nmap"], _ = measure("nmap", lambda: run_nmap(ports), expected, args.repeat)
        exe = None if args.no_sslyze else sslyze_bin()
        if exe is not None:
            rates["sslyze"], _ = measure("sslyze", lambda: run_sslyze(exe, ports, work),
                                         expected, 1)
        got = run_certwarden(sorted(starttls), work, starttls="smtp")
        ok = sum(1 for p, h in starttls.items() if got.get(p) == h)
        print(f"STARTTLS   certwarden {ok}/{len(starttls)} SMTP STARTTLS leaves correct")
        print()
        cw = rates["certwarden"]
        goals = {"plain": 0.85, "nmap": 2.0, "sslyze": 15.0}
        for peer, goal in goals.items():
            if rates.get(peer):
                ratio = cw / rates[peer]
                verdict = "meets" if ratio >= goal else "short of"
                print(f"certwarden / {peer:<7} = {ratio:6.2f}x   ({verdict} the goal {goal}x)")
    finally:
        parent.close()
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
