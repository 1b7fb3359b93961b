"""The vendored browser assets are exactly the pinned npm files (vendor/SHA256SUMS)."""

import hashlib
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "src" / "certwarden" / "web" / "static" / "vendor"


def test_vendored_assets_match_their_pinned_digests() -> None:
    lines = (VENDOR / "SHA256SUMS").read_text().splitlines()
    pinned = dict(reversed(line.split()) for line in lines if line.strip())
    assert set(pinned) == {"htmx.min.js", "chart.umd.min.js"}
    for name, digest in pinned.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_every_vendored_asset_has_its_licence_beside_it() -> None:
    assert (VENDOR / "htmx.LICENSE").read_text().startswith("Zero-Clause BSD")
    assert "MIT License" in (VENDOR / "chart.js.LICENSE").read_text()
