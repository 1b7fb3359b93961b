"""The HTML report in a real headless Chromium: the DOM it builds, and what it paints."""

from __future__ import annotations

import datetime as dt
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from certwarden.assess import Policy, assess
from certwarden.assess.forecast import forecast
from certwarden.assess.policy import Owner
from certwarden.cli.demo_forge import forge
from certwarden.records import Location, Sighting
from certwarden.report import build, to_html
from certwarden.x509.verify import TrustStore
from tests.conftest import require_tool

pytestmark = pytest.mark.peer("chromium")
NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    exe = require_tool("chromium", path="/usr/bin/chromium")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, timeout=120, check=False)


def _png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """A tiny PNG reader (8-bit RGB/RGBA, non-interlaced: what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = ctype = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, interlace) == (8, 0)
            assert ctype in (2, 6)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    pixels = []
    i = 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 0xFF
            elif f == 2:
                line[x] = (line[x] + b) & 0xFF
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        pixels.extend(tuple(line[x : x + 3]) for x in range(0, stride, bpp))
        prev = line
    return width, height, pixels  # type: ignore[return-value]


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = forge(subject="CN=Root", sans=(), ca=True, not_before=NOW - 100 * DAY, days=3650)
    certs = [
        forge(subject="CN=ok.test", sans=("ok.test",), issuer=root, not_before=NOW - DAY),
        forge(subject="CN=s.test,O=Internet Widgits Pty Ltd", sans=("s.test",), key="rsa1024",
              not_before=NOW - 500 * DAY, days=400),
        forge(subject="CN=soon.test", sans=("soon.test",), not_before=NOW - 80 * DAY, days=90),
        forge(subject="CN=long.test", sans=("long.test",), issuer=root,
              not_before=NOW - 10 * DAY, days=9000, key="rsa2048"),
    ]
    sightings = [Sighting(certificate=f.certificate, location=Location.tls(
        "127.0.0.1", 8440 + i, sni=f.certificate.sans.dns[0]), seen_at=NOW,
        chain=(root.certificate,)) for i, f in enumerate(certs)]
    policy = Policy(owners=(Owner(match="tls://127.0.0.1:8440*", team="web"),))
    result = assess(sightings, policy=policy, trust=TrustStore.of([root.certificate]), now=NOW)
    out = tmp_path_factory.mktemp("html") / "report.html"
    out.write_text(to_html(build(result, forecast(result.certificates))), encoding="utf-8")
    return out


def test_chromium_builds_the_dom(report_html: Path, tmp_path: Path) -> None:
    proc = _chromium(tmp_path, "--dump-dom", report_html.as_uri())
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    dom = proc.stdout.decode()
    for chart in ("expiry", "severity", "rules", "issuance", "keys", "owners", "forecast"):
        assert f'data-chart="{chart}"' in dom, chart
    assert dom.count('class="finding"') >= 6
    assert "certwarden report" in dom


def test_chromium_paints_the_charts(report_html: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1400",
                     report_html.as_uri())
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 1400)
    colours = Counter(pixels)
    # Not blank: no single colour covers nearly everything, and many colours are painted.
    assert colours.most_common(1)[0][1] < 0.9 * len(pixels)
    assert len(colours) > 50
    # The charts' own fills are on screen (severity high, self-signed slice, ca-issued slice,
    # the forecast's "needed" series), each as a solid area, not a stray pixel.
    for name, rgb in {"high": (220, 38, 38), "ca-issued": (22, 163, 74),
                      "header": (15, 23, 42), "needed": (37, 99, 235)}.items():
        assert colours[rgb] > 200, f"{name} {rgb} painted {colours[rgb]} pixels"
