"""Throughput of ``certwarden.traffic`` against tshark extracting the same certificates.

    .venv/bin/python bench/traffic.py [--size-mb 520] [--keep FILE]

Builds one large pcapng from the Zeek and JA4 corpus captures (repeated, re-timestamped, and
with the third octet of every IPv4 / a byte of every IPv6 address changed per copy so each copy
is a new set of connections), plus a TLS 1.2 capture generated here: openssl s_server and
s_client in a network namespace whose loopback has MTU 1500, so certificates span segments.
Then, in one run, measures certwarden (``analyze`` over the file) and
``tshark -T fields -e tls.handshake.type -e tls.handshake.certificate`` on it: MB/s,
handshakes/s, peak memory (each in its own child process), and whether both found the same
set of certificates. Prints ratios.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPORA = (ROOT / ".." / "shared" / "corpora").resolve()
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from certwarden.traffic.capture import read_frames  # noqa: E402

_IP_OFFSET = {1: 14, 113: 16, 276: 20, 101: 0, 228: 0, 229: 0, 0: 4, 108: 4}


def _ip_offset(linktype: int, frame: bytes) -> int | None:
    off = _IP_OFFSET.get(linktype)
    if off is None or len(frame) < off + 40:
        return None
    if linktype == 1:
        while frame[off - 2:off] in (b"\x81\x00", b"\x88\xa8"):
            off += 4
    return off


def _retag(linktype: int, frame: bytes, copy: int) -> bytes:
    """Make copy ``copy`` of a frame belong to different connections than the other copies."""
    off = _ip_offset(linktype, frame)
    if off is None or copy == 0:
        return frame
    b = bytearray(frame)
    v = b[off] >> 4
    if v == 4:
        b[off + 14] ^= copy & 0xFF
        b[off + 18] ^= copy & 0xFF
        b[off + 13] ^= (copy >> 8) & 0xFF
        b[off + 17] ^= (copy >> 8) & 0xFF
    elif v == 6:
        b[off + 8 + 13] ^= copy & 0xFF
        b[off + 24 + 13] ^= copy & 0xFF
        b[off + 8 + 12] ^= (copy >> 8) & 0xFF
        b[off + 24 + 12] ^= (copy >> 8) & 0xFF
    return bytes(b)


def _block(btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def build(out: Path, size_mb: int, generated: Path | None) -> tuple[int, int]:
    """Write the big capture; return (bytes, copies)."""
    sources = sorted(glob.glob(str(CORPORA / "zeek" / "pcaps" / "**" / "*.pcap*"),
                               recursive=True))
    sources += [p for p in sorted(glob.glob(str(CORPORA / "ja4" / "pcaps" / "*")))
                if "tls" in p or "x509" in p or "latest" in p or "https" in p or "ipv6" in p]
    if generated is not None:
        sources.append(str(generated))
    frames: list[tuple[int, float, bytes]] = []
    linktypes: dict[int, int] = {}
    for src in sources:
        try:
            got = list(read_frames(src))
        except Exception:  # noqa: S112 - a source we cannot read is left out of the mix
            continue
        if not got:
            continue
        t0 = got[0][0]
        for ts, lt, data in got:
            if lt not in _IP_OFFSET:
                continue
            iface = linktypes.setdefault(lt, len(linktypes))
            frames.append((iface, ts - t0, data))
    written = 0
    target = size_mb * 1024 * 1024
    copies = 0
    with open(out, "wb") as fh:
        fh.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        for lt in linktypes:
            fh.write(_block(1, struct.pack("<HHI", lt, 0, 0)))
        by_iface = {v: k for k, v in linktypes.items()}
        while written < target:
            base = 1_600_000_000 + copies * 3600  # each copy an hour after the previous one
            chunk = []
            for iface, rel, data in frames:
                d = _retag(by_iface[iface], data, copies)
                t = round((base + rel) * 1e6)
                chunk.append(_block(6, struct.pack("<IIIII", iface, t >> 32, t & 0xFFFFFFFF,
                                                    len(d), len(d)) + d))
            blob = b"".join(chunk)
            fh.write(blob)
            written += len(blob)
            copies += 1
    return out.stat().st_size, copies


def generate_tls12(workdir: Path, count: int, payload_kb: int) -> Path | None:
    """The netns openssl capture (needs root, iproute2, openssl, dumpcap); None if impossible."""
    try:
        from tests.peer.test_traffic_tshark import capture_openssl_handshakes
    except ImportError:
        return None
    name = f"cwbench{os.getpid()}"
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "openssl", "dumpcap")):
        print("note: no generated TLS 1.2 part (needs root, iproute2, openssl and dumpcap)")
        return None
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "mtu", "1500", "gso_max_segs", "1",
                        "up"], check=True)
        pcap, _der = capture_openssl_handshakes(name, workdir, count, port=9443,
                                                payload_kb=payload_kb)
        return pcap
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _hwm_mb(pid: int | str = "self") -> float:
    """Peak resident memory of one process (VmHWM: per address space, reset by exec — unlike
    ru_maxrss, which a child inherits from the parent it was forked from)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure_ours(path: str) -> dict[str, object]:
    from certwarden.traffic.analyzer import CaptureStats, analyze

    stats = CaptureStats(path=path)
    certs: set[str] = set()
    handshakes = 0
    t = time.perf_counter()
    for s in analyze(path, stats=stats):
        if s.cipher is not None:
            handshakes += 1
        for d in s.server_chain:
            certs.add(hashlib.sha256(d).hexdigest())
        for d in s.client_chain:
            certs.add(hashlib.sha256(d).hexdigest())
    elapsed = time.perf_counter() - t
    return {"seconds": elapsed, "handshakes": handshakes, "certs": sorted(certs),
            "max_open_flows": stats.max_open_flows, "error": stats.error,
            "peak_rss_mb": _hwm_mb()}


def measure_tshark(path: str) -> dict[str, object]:
    t = time.perf_counter()
    proc = subprocess.Popen(["tshark", "-r", path, "-T", "fields", "-E", "aggregator=,",
                             "-e", "tls.handshake.type", "-e", "tls.handshake.certificate"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    certs: set[str] = set()
    handshakes = 0
    peak = [0.0]
    done = threading.Event()

    def watch() -> None:  # tshark's own VmHWM, sampled until it exits
        while not done.wait(0.05):
            peak[0] = max(peak[0], _hwm_mb(proc.pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert proc.stdout is not None
    for line in proc.stdout:
        types, _, hexders = line.rstrip("\n").partition("\t")
        handshakes += types.split(",").count("2")
        for h in hexders.split(","):
            if h:
                certs.add(hashlib.sha256(bytes.fromhex(h)).hexdigest())
    peak[0] = max(peak[0], _hwm_mb(proc.pid))
    proc.wait()
    elapsed = time.perf_counter() - t
    done.set()
    watcher.join()
    return {"seconds": elapsed, "handshakes": handshakes, "certs": sorted(certs),
            "peak_rss_mb": peak[0]}


def _child(which: str, path: str) -> dict[str, object]:
    r = subprocess.run([sys.executable, __file__, "--measure", which, path],
                       capture_output=True, text=True, check=True)
    return dict(json.loads(r.stdout))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=520)
    ap.add_argument("--keep", default=None, help="write the big capture here and keep it")
    ap.add_argument("--generated-handshakes", type=int, default=200)
    ap.add_argument("--generated-payload-kb", type=int, default=64,
                    help="application data each generated session transfers after its handshake")
    ap.add_argument("--measure", nargs=2, metavar=("WHO", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        who, path = args.measure
        print(json.dumps(measure_ours(path) if who == "ours" else measure_tshark(path)))
        return
    if not shutil.which("tshark"):
        sys.exit("bench/traffic.py: tshark is not installed (make deb installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gen = generate_tls12(work, args.generated_handshakes, args.generated_payload_kb)
        big = Path(args.keep) if args.keep else work / "big.pcapng"
        t = time.perf_counter()
        size, copies = build(big, args.size_mb, gen)
        mb = size / 1e6
        gen_mb = gen.stat().st_size / 1e6 if gen else 0.0
        print(f"capture: {mb:.0f} MB = {copies} copies of (corpus mix"
              + (f" + generated TLS 1.2 capture of {gen_mb:.1f} MB: {args.generated_handshakes} "
                 f"sessions x {args.generated_payload_kb} KiB, netns loopback MTU 1500)"
                 if gen else ", no generated part)")
              + f", built in {time.perf_counter() - t:.0f} s")
        ours = _child("ours", str(big))
        theirs = _child("tshark", str(big))
    for name, r in (("certwarden", ours), ("tshark", theirs)):
        secs = float(r["seconds"])  # type: ignore[arg-type]
        hs = int(r["handshakes"])  # type: ignore[call-overload]
        print(f"{name:>10}: {secs:7.1f} s  {mb / secs:7.1f} MB/s  {hs / secs:9.0f} handshakes/s "
              f"({hs} handshakes)  {len(r['certs'])} distinct certificates  "  # type: ignore[arg-type]
              f"peak RSS {float(r['peak_rss_mb']):.0f} MB")  # type: ignore[arg-type]
    ratio = float(theirs["seconds"]) / float(ours["seconds"])  # type: ignore[arg-type]
    a, b = set(ours["certs"]), set(theirs["certs"])  # type: ignore[call-overload]
    print(f"throughput ratio certwarden/tshark: {ratio:.1f}x")
    print(f"certificates: both {len(a & b)}, only certwarden {len(a - b)}, only tshark "
          f"{len(b - a)}")
    if ours.get("max_open_flows"):
        print(f"certwarden max open flows: {ours['max_open_flows']}")


if __name__ == "__main__":
    main()
