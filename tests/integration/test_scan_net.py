"""The network scanner against real servers on 127.0.0.1 (Python ``ssl`` and asyncio)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from certwarden.discovery.net import ProbeResult, Scanner, ScanOptions
from certwarden.discovery.targets import Endpoint, Starttls
from certwarden.records import OutcomeStatus as Status  # the one outcome vocabulary
from certwarden.x509 import Certificate
from discovery_support import BlackHole, Issued, Loopback, free_port, issue, server_context
from discovery_support import starttls_server as starttls_handler


@pytest.fixture
def loop_servers() -> Iterator[Loopback]:
    lb = Loopback()
    yield lb
    lb.close()


@pytest.fixture(scope="module")
def pki() -> tuple[Issued, Issued, Issued]:
    root = issue("Scan Test Root", ca=True)
    inter = issue("Scan Test Intermediate", issuer=root, ca=True)
    leaf = issue("leaf.scan.test", issuer=inter)
    return root, inter, leaf


def run(endpoints: list[Endpoint], **opts: object) -> dict[int, ProbeResult]:
    async def go() -> dict[int, ProbeResult]:
        scanner = Scanner(ScanOptions(**opts))  # type: ignore[arg-type]
        return {r.endpoint.port: r async for r in scanner.scan(endpoints)}

    return asyncio.run(go())


def ep(port: int, **kw: object) -> Endpoint:
    return Endpoint(host="127.0.0.1", port=port, **kw)  # type: ignore[arg-type]


def test_full_chain_version_cipher_alpn(loop_servers: Loopback, tmp_path: Path,
                                        pki: tuple[Issued, Issued, Issued]) -> None:
    root, inter, leaf = pki
    ctx = server_context(tmp_path, leaf, inter, root)
    ctx.set_alpn_protocols(["h2"])
    port = loop_servers.serve(tls=ctx)
    [r] = run([ep(port, sni="leaf.scan.test")]).values()
    assert r.status is Status.OK, r.error
    assert [Certificate.from_der(d).sha256 for d in r.chain] == [
        leaf.record.sha256, inter.record.sha256, root.record.sha256]
    assert r.tls_version == "TLSv1.3"
    assert r.cipher is not None
    assert r.cipher.startswith("TLS_")
    assert r.alpn == "h2"
    sg = r.sighting()
    assert sg is not None
    assert sg.certificate == leaf.record
    assert sg.chain == (inter.record, root.record)
    assert sg.location.uri == f"tls://127.0.0.1:{port}?sni=leaf.scan.test"


def test_sni_selects_the_certificate(loop_servers: Loopback, tmp_path: Path) -> None:
    a, b = issue("a.sni.test"), issue("b.sni.test")
    ctx_a, ctx_b = server_context(tmp_path, a), server_context(tmp_path, b)

    def pick(sock: object, name: str | None, _ctx: object) -> None:
        if name == "b.sni.test":
            sock.context = ctx_b  # type: ignore[attr-defined]

    ctx_a.sni_callback = pick  # type: ignore[assignment]
    port = loop_servers.serve(tls=ctx_a)

    async def go() -> list[ProbeResult]:
        scanner = Scanner(ScanOptions())
        return [r async for r in scanner.scan([ep(port, sni="a.sni.test"),
                                               ep(port, sni="b.sni.test")])]

    got = {r.endpoint.sni: Certificate.from_der(r.chain[0]).sha256 for r in asyncio.run(go())}
    assert got == {"a.sni.test": a.record.sha256, "b.sni.test": b.record.sha256}


async def _http(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await r.read(65536)
    w.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    await w.drain()


async def _garbage(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await r.read(65536)  # after the ClientHello: bytes that are no TLS record
    w.write(bytes(range(7, 250)) * 4)
    await w.drain()
    await asyncio.sleep(1)


async def _reset(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    sock = w.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    w.transport.abort()  # SO_LINGER 0 + close = RST


async def _hang(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)  # reads the ClientHello never, answers never


async def _half_open(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await r.read(65536)
    w.write_eof()  # FIN without a word; stay, so no reset follows the FIN
    await asyncio.sleep(2)


async def _ssh(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write(b"SSH-2.0-OpenSSH_9.6\r\n")
    await w.drain()
    await r.read(65536)


def test_every_failure_is_a_typed_outcome(loop_servers: Loopback) -> None:
    ports = {name: loop_servers.serve(h) for name, h in (
        ("http", _http), ("garbage", _garbage), ("reset", _reset), ("hang", _hang),
        ("half", _half_open), ("ssh", _ssh))}
    ports["nothing"] = free_port()
    t0 = time.perf_counter()
    got = run([ep(p) for p in ports.values()], handshake_timeout=1.0, connect_timeout=1.0,
              starttls="none")
    elapsed = time.perf_counter() - t0
    by_name = {name: got[p] for name, p in ports.items()}
    assert by_name["http"].status is Status.NOT_TLS
    assert by_name["garbage"].status is Status.NOT_TLS
    assert by_name["ssh"].status is Status.NOT_TLS
    assert by_name["reset"].status in (Status.RESET, Status.CLOSED)
    assert by_name["hang"].status is Status.HANDSHAKE_TIMEOUT
    assert by_name["half"].status is Status.CLOSED
    assert by_name["nothing"].status is Status.REFUSED
    assert all(r.reason for r in by_name.values())
    # All in parallel: the one that never answers costs one handshake timeout, not more.
    assert elapsed < 2.5


def test_dead_host_costs_one_timeout(loop_servers: Loopback) -> None:
    hole = BlackHole("127.0.0.3", 6)
    try:
        t0 = time.perf_counter()
        got = run([Endpoint(host="127.0.0.3", port=p) for p in hole.ports],
                  connect_timeout=0.6, concurrency=2)
        elapsed = time.perf_counter() - t0
    finally:
        hole.close()
    statuses = sorted(str(r.status) for r in got.values())
    assert statuses == ["connect-timeout"] + ["host-down"] * 5
    # With 2 workers and 6 ports, probing each port would cost 3 timeouts.
    assert elapsed < 0.6 * 1.9


def test_concurrency_bound_and_rate(loop_servers: Loopback, tmp_path: Path) -> None:
    open_now = 0
    peak = 0

    async def count(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            while await r.read(65536):  # until the scanner hangs up
                pass
        finally:
            open_now -= 1

    ports = [loop_servers.serve(count) for _ in range(12)]
    run([ep(p) for p in ports], concurrency=3, handshake_timeout=0.1, starttls="none")
    assert 1 <= peak <= 3
    t0 = time.perf_counter()
    run([ep(free_port()) for _ in range(10)], rate=20.0)
    assert time.perf_counter() - t0 >= 9 / 20 * 0.9  # 10 connects at 20/s: >= 0.45 s


def test_retries_are_counted(loop_servers: Loopback) -> None:
    port = loop_servers.serve(_half_open)
    [r] = run([ep(port)], retries=2, starttls="none").values()
    assert r.status is Status.CLOSED
    assert r.attempts == 3


@pytest.mark.parametrize("proto", ["smtp", "imap", "pop3", "ftp", "ldap", "xmpp", "mysql",
                                   "postgres"])
def test_starttls_dialogues(loop_servers: Loopback, tmp_path: Path, proto: str) -> None:
    cert = issue(f"{proto}.starttls.test")
    port = loop_servers.serve(starttls_handler(proto, server_context(tmp_path, cert)))
    declining = loop_servers.serve(starttls_handler(proto, server_context(tmp_path, cert),
                                                    offer=False))
    got = run([ep(port), ep(declining)], starttls=proto, handshake_timeout=3.0)
    assert got[port].status is Status.OK, got[port].error
    assert got[port].starttls == Starttls(proto)
    assert Certificate.from_der(got[port].chain[0]) == cert.record
    assert got[port].location.uri == f"tls://127.0.0.1:{port}?starttls={proto}"
    assert got[declining].status in (Status.STARTTLS_REFUSED, Status.CLOSED), got[declining]


def test_auto_finds_starttls_by_banner_on_an_odd_port(loop_servers: Loopback,
                                                      tmp_path: Path) -> None:
    cert = issue("banner.test")
    smtp = loop_servers.serve(starttls_handler("smtp", server_context(tmp_path, cert)))
    imap = loop_servers.serve(starttls_handler("imap", server_context(tmp_path, cert)))
    got = run([ep(smtp), ep(imap)], starttls="auto", handshake_timeout=3.0)
    assert (got[smtp].status, got[smtp].starttls) == (Status.OK, Starttls.SMTP)
    assert (got[imap].status, got[imap].starttls) == (Status.OK, Starttls.IMAP)


def test_cancelled_scan_leaves_no_task_behind(loop_servers: Loopback) -> None:
    port = loop_servers.serve(_hang)

    async def go() -> None:
        scanner = Scanner(ScanOptions(handshake_timeout=30))
        agen = scanner.scan([ep(port)] * 3)
        async def drain() -> None:
            async with asyncio.timeout(0.3):
                async for _ in agen:
                    pass

        with pytest.raises(TimeoutError):
            await drain()
        await agen.aclose()
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(go())
