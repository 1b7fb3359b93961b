"""The Postfix journey: Debian's Postfix (private config dir, queue and log in a temp dir) with
STARTTLS on a loopback port, found by ``certwarden scan``, replaced through a ``deploy:``
config entry (its files, ``postfix -c DIR reload``), verified over STARTTLS, then renewed by
``agent --once`` while a client trusting only the private root keeps upgrading connections:
zero failed handshakes. A failing reload ends in a rollback.

Postfix's master must start as root (it drops to the ``postfix`` user): the test needs it.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from certwarden.cli import main
from lifecycle_servers import Postfix, Prober, is_root, running, served_sha256
from tests.conftest import IN_CI, require_tool

pytestmark = [pytest.mark.peer("postfix"), pytest.mark.slow]

CA_CONFIG = "profiles:\n  short:\n    lifetime_days: 0.0028\n"
LIFECYCLE = """\
renewal:
  jitter: 0
  profiles:
    short: {{renew_before: 230s}}
schedules:
  - {{job: renew, every: 1s}}
deploy:
  - location: "tls://127.0.0.1:{port}?starttls=smtp"
    files: {{fullchain: "{cert}", key: "{key}"}}
    reload: "{reload}"
    verify_timeout: 20
"""


@pytest.fixture
def postfix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Postfix]:
    binary = require_tool("postfix", path="/usr/sbin/postfix")
    if not is_root():
        if IN_CI:
            pytest.fail("the Postfix journey needs root (Postfix's master starts as root)")
        pytest.skip("the Postfix journey needs root (Postfix's master starts as root)")
    monkeypatch.setenv("CERTWARDEN_DATABASE_URL", f"sqlite:///{tmp_path / 'inv.db'}")
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "postfix-journey-passphrase")
    monkeypatch.setenv("CERTWARDEN_CA_DIR", str(tmp_path / "ca"))
    (tmp_path / "ca.yaml").write_text(CA_CONFIG)
    assert main(["ca", "init", "--name", "Mail CA", "--config", str(tmp_path / "ca.yaml")]) == 0
    assert main(["ca", "root", "--out", str(tmp_path / "root.pem")]) == 0
    # Postfix's daemons (user postfix) walk into their queue: pytest's tmp dirs are 0700.
    root = Path(tempfile.mkdtemp(prefix="certwarden-postfix-"))
    root.chmod(0o755)
    try:
        yield Postfix(postfix=binary, root=root / "postfix")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _config(tmp: Path, pf: Postfix, reload: str) -> str:
    path = tmp / "lifecycle.yaml"
    path.write_text(LIFECYCLE.format(port=pf.port, cert=pf.cert, key=pf.key, reload=reload))
    return str(path)


def test_replace_then_renew_over_starttls(postfix: Postfix, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, postfix, postfix.reload_cmd)
    location = f"tls://127.0.0.1:{postfix.port}?starttls=smtp"
    with running(postfix) as old_sha:
        assert main(["scan", f"127.0.0.1:{postfix.port}"]) == 0
        capsys.readouterr()
        assert main(["replace", "--apply", "--profile", "short", "--config", config,
                     "--json"]) == 0
        [done] = json.loads(capsys.readouterr().out)
        assert done["location"] == location
        assert done["status"] == "replaced", done
        assert done["old_sha256"] == old_sha
        assert served_sha256(postfix.port, starttls=True) == done["new_sha256"]
        assert postfix.key.stat().st_mode & 0o777 == 0o600

        # The rescan sees the CA-issued certificate over STARTTLS.
        assert main(["scan", f"127.0.0.1:{postfix.port}"]) == 0
        capsys.readouterr()
        assert main(["inventory", "list", "--json"]) == 0
        [row] = [r for r in json.loads(capsys.readouterr().out)
                 if r["location"] == location and not r["position"]]
        assert row["sha256"] == done["new_sha256"]

        assert main(["managed", "list", "--json", "--config", config]) == 0
        [managed] = json.loads(capsys.readouterr().out)
        assert managed["locations"] == [location]
        renew_at = dt.datetime.fromisoformat(managed["next_renewal"].replace("Z", "+00:00"))
        with Prober(port=postfix.port, root_pem=tmp_path / "root.pem", starttls=True) as prober:
            time.sleep(max(0.0, (renew_at - dt.datetime.now(dt.UTC)).total_seconds()) + 1)
            assert main(["agent", "--once", "--config", config]) == 0
            log = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
            time.sleep(1.0)
        [renewal] = [r for r in log if r["action"] == "renew"]
        assert renewal["status"] == "renewed", renewal
        assert main(["managed", "list", "--json", "--config", config]) == 0
        [after] = json.loads(capsys.readouterr().out)
        assert after["serial"] == renewal["serial"] != done["serial"]
        assert served_sha256(postfix.port, starttls=True) == after["sha256"]
        assert prober.failures == []
        # Served first the replacement, last the renewal, and nothing else. (While old
        # workers drain after a graceful reload a new connection may still meet the old
        # certificate once more: that is a success, and so counted.)
        assert prober.seen[0] == done["new_sha256"]
        assert prober.seen[-1] == after["sha256"]
        assert set(prober.seen) == {done["new_sha256"], after["sha256"]}
        assert prober.ok > 10


def test_failing_reload_rolls_back(postfix: Postfix, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, postfix, f"{postfix.reload_cmd} && exit 5")
    with running(postfix) as old_sha:
        assert main(["scan", f"127.0.0.1:{postfix.port}"]) == 0
        capsys.readouterr()
        before = postfix.cert.read_bytes(), postfix.key.read_bytes()
        rc = main(["replace", "--apply", "--profile", "short", "--config", config])
        [line] = capsys.readouterr().err.strip().splitlines()
        assert rc == 3
        assert line.startswith(f"certwarden: rolled-back: tls://127.0.0.1:{postfix.port}"
                               "?starttls=smtp: reload ")
        assert line.endswith("failed (exit 5)")
        assert (postfix.cert.read_bytes(), postfix.key.read_bytes()) == before
        time.sleep(0.5)
        assert served_sha256(postfix.port, starttls=True) == old_sha
