"""The demo's lifecycle act, run for real: the sandbox's self-signed services replaced and
verified over TLS, one renewed, one rollback (its files back as they were)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from certwarden.cli.demo_estate import build_estate
from certwarden.cli.demo_lifecycle import run_lifecycle
from certwarden.x509 import Kind, read_source


def test_lifecycle_act(tmp_path: Path) -> None:
    estate = build_estate(dt.datetime.now(dt.UTC))
    selfsigned = [s.name for s in estate.services
                  if s.leaf.certificate.kind in (Kind.SELF_SIGNED, Kind.SELF_ISSUED)]
    assert len(selfsigned) >= 2
    lines = run_lifecycle(estate, tmp_path)
    replaced = [ln for ln in lines if ln.startswith("replaced ")]
    assert len(replaced) == len(selfsigned) - 1
    assert all(re.search(r": replaced, serial \w+, verified at tls://127\.0\.0\.1:\d+$", ln)
               for ln in replaced), replaced
    [rollback] = [ln for ln in lines if "failing reload" in ln]
    assert "exit 3; rolled-back: file://" in rollback
    assert rollback.endswith("failed (exit 1): config test failed")
    [renewed] = [ln for ln in lines if ln.startswith("renewed ")]
    assert ": renewed, new serial " in renewed
    managed = [ln for ln in lines if ln.startswith("managed #")]
    assert len(managed) == len(selfsigned) - 1
    assert sum(ln.endswith("attempts: replace deployed, renew deployed") for ln in managed) == 1
    assert sum(ln.endswith("attempts: replace deployed") for ln in managed) == len(managed) - 1
    # The rolled-back service's files hold its original self-signed certificate again.
    bad = next(s for s in estate.services if s.name == selfsigned[-1])
    cert = tmp_path / "lifecycle" / bad.name / "cert.pem"
    assert read_source(str(cert)).certificates[0] == bad.leaf.certificate
