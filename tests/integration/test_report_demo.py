"""The sandbox demo: real TLS services on loopback, real discovery, every verdict checked.

Precision and recall are both 100% or the test fails: each place must trip exactly the rules
the estate says it should, and together the places must trip every rule in the registry.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from certwarden.assess import RULE_IDS
from certwarden.cli.demo import DemoRun, run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    return run_demo(tmp_path_factory.mktemp("demo"), echo=False)


def test_every_expected_rule_fires_and_no_other(demo: DemoRun) -> None:
    expected, found = demo.expected(), demo.found()
    assert set(found) == set(expected), set(found) ^ set(expected)
    wrong = {k: (sorted(expected[k]), sorted(found[k])) for k in expected
             if expected[k] != found[k]}
    assert not wrong, wrong


def test_the_estate_covers_every_rule(demo: DemoRun) -> None:
    fired = {f.rule for f in demo.assessment.findings}
    assert fired == RULE_IDS, RULE_IDS - fired


def test_estate_shape(demo: DemoRun) -> None:
    tls = [s for s in demo.assessment.sightings if s.location.kind == "tls"]
    assert {s.location.port for s in tls} == set(demo.ports.values())  # every server scanned
    assert any(s.location.starttls == "smtp" for s in tls)
    private = next(s for s in tls if s.location.port == demo.ports["private-chain"])
    assert len(private.chain) == 2  # issuing + root after the leaf: a complete private chain
    assert demo.assessment.suppressed == 1  # the printer's live exception
    assert not demo.assessment.errors
    # Issue 11's shapes: a CA:TRUE self-signed leaf served, a correct private chain (leaf +
    # intermediate, the root not sent), a name given per target.
    req = next(s for s in tls if s.location.port == demo.ports["req-x509"])
    assert req.certificate.is_ca
    assert not req.chain
    no_root = next(s for s in tls if s.location.port == demo.ports["private-chain-no-root"])
    assert [c.subject_cn for c in no_root.chain] == ["Lab Issuing CA"]
    named = next(s for s in tls if s.location.port == demo.ports["hostname-mismatch"])
    assert named.location.sni == "www.demo.test"


def test_the_rescan_of_other_ports_marks_nothing_gone(demo: DemoRun) -> None:
    from certwarden.store.inventory import Inventory

    with Inventory.open(f"sqlite:///{demo.folder.parent / 'inventory.db'}") as inv:
        scans = [s for s in inv.scans() if s.kind == "net"]
        assert len(scans) == 2
        assert scans[0].targets[0] == scans[1].targets[0] == "127.0.0.1"  # the same host
        assert [c.location for c in inv.changes() if c.change == "gone"] == []
        assert {s.location.port for s in inv.sightings()} >= set(demo.ports.values())


def test_everything_stopped_and_report_written(demo: DemoRun) -> None:
    for port in demo.ports.values():
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still listening"
    html = demo.report.read_text(encoding="utf-8")
    assert 'data-chart="forecast"' in html
    assert demo.seconds < 60


def test_demo_command_end_to_end(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "certwarden"  # the installed console script
    proc = subprocess.run([str(exe), "demo", "--workdir", str(tmp_path)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "0 unexpected" in proc.stdout
    assert f"HTML report: {tmp_path / 'report.html'}" in proc.stdout
    assert (tmp_path / "report.html").stat().st_size > 10_000
