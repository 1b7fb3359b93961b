"""The nginx journey: Debian's nginx on 127.0.0.1 serving a self-signed certificate is found by
``certwarden scan``, replaced with ``replace --apply --reload 'nginx -s reload'``, verified by
a rescan, then renewed by ``agent --once`` with a short-lived profile while a client that
trusts only the private root keeps handshaking: zero failed handshakes. A failing reload and
an nginx that keeps serving the old certificate each end in a rollback.

All real: nginx (own prefix, config and pid file in a temp dir), the private CA, the
inventory (SQLite), TLS on loopback.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from certwarden.cli import main
from lifecycle_servers import Nginx, Prober, running, served_sha256
from tests.conftest import require_tool

pytestmark = [pytest.mark.peer("nginx"), pytest.mark.slow]

# 4 minutes of validity (+ the CA's 1-minute backdate); renewal due 12 s after issuance.
CA_CONFIG = "profiles:\n  short:\n    lifetime_days: 0.0028\n"
LIFECYCLE = """\
renewal:
  jitter: 0
  profiles:
    short: {{renew_before: 230s}}
schedules:
  - {{job: renew, every: 1s}}
deploy:
  - location: "file://{prefix}/*"
    verify_timeout: {verify_timeout}
"""


@pytest.fixture
def nginx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nginx:
    binary = require_tool("nginx", path="/usr/sbin/nginx")
    monkeypatch.setenv("CERTWARDEN_DATABASE_URL", f"sqlite:///{tmp_path / 'inv.db'}")
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "nginx-journey-passphrase")
    monkeypatch.setenv("CERTWARDEN_CA_DIR", str(tmp_path / "ca"))
    (tmp_path / "ca.yaml").write_text(CA_CONFIG)
    assert main(["ca", "init", "--name", "Journey CA", "--config", str(tmp_path / "ca.yaml")]) == 0
    assert main(["ca", "root", "--out", str(tmp_path / "root.pem")]) == 0
    return Nginx(nginx=binary, prefix=tmp_path / "nginx")


def _config(tmp: Path, nginx: Nginx, *, verify_timeout: int = 20) -> str:
    path = tmp / "lifecycle.yaml"
    path.write_text(LIFECYCLE.format(prefix=nginx.prefix, verify_timeout=verify_timeout))
    return str(path)


def _discover(nginx: Nginx, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", f"127.0.0.1:{nginx.port}", "--starttls", "none"]) == 0
    assert main(["discover", "files", str(nginx.prefix / "certs")]) == 0
    capsys.readouterr()


def _served_in_inventory(capsys: pytest.CaptureFixture[str], port: int) -> str:
    assert main(["inventory", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    [row] = [r for r in rows if r["location"] == f"tls://127.0.0.1:{port}" and not r["position"]]
    return str(row["sha256"])


def test_replace_then_renew_with_zero_failed_handshakes(
        nginx: Nginx, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, nginx)
    with running(nginx) as old_sha:
        _discover(nginx, capsys)
        assert _served_in_inventory(capsys, nginx.port) == old_sha

        # Replace: one plan item for the file, the TLS endpoint verified with it.
        assert main(["replace", "--apply", "--profile", "short", "--reload", nginx.reload_cmd,
                     "--config", config, "--json"]) == 0
        [done] = json.loads(capsys.readouterr().out)
        assert done["status"] == "replaced", done
        assert done["served"] == [f"tls://127.0.0.1:{nginx.port}"]
        assert served_sha256(nginx.port) == done["new_sha256"]
        assert (nginx.key.stat().st_mode & 0o777) == 0o600

        # The rescan sees the CA-issued certificate at the endpoint.
        assert main(["scan", f"127.0.0.1:{nginx.port}", "--starttls", "none"]) == 0
        capsys.readouterr()
        assert _served_in_inventory(capsys, nginx.port) == done["new_sha256"]

        # It is managed now: renewal time 10 s after issuance, state ok, then due.
        assert main(["managed", "list", "--json", "--config", config]) == 0
        [managed] = json.loads(capsys.readouterr().out)
        assert managed["serial"] == done["serial"]
        assert [(a["kind"], a["outcome"]) for a in managed["attempts"]] == [
            ("replace", "deployed")]
        renew_at = dt.datetime.fromisoformat(managed["next_renewal"].replace("Z", "+00:00"))
        not_after = dt.datetime.fromisoformat(managed["not_after"].replace("Z", "+00:00"))
        assert not_after - renew_at == dt.timedelta(seconds=230)

        with Prober(port=nginx.port, root_pem=tmp_path / "root.pem") as prober:
            time.sleep(max(0.0, (renew_at - dt.datetime.now(dt.UTC)).total_seconds()) + 1)
            assert main(["managed", "list", "--json", "--config", config]) == 0
            assert json.loads(capsys.readouterr().out)[0]["state"] == "due"
            assert main(["agent", "--once", "--config", config]) == 0
            log = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
            time.sleep(1.0)  # keep handshaking on the new certificate for a while
        [renewal] = [r for r in log if r["action"] == "renew"]
        assert renewal["status"] == "renewed", renewal
        assert main(["managed", "list", "--json", "--config", config]) == 0
        [after] = json.loads(capsys.readouterr().out)
        assert after["serial"] == renewal["serial"] != done["serial"]
        assert after["state"] == "ok"
        assert [(a["kind"], a["outcome"], a["serial"]) for a in after["attempts"]] == [
            ("replace", "deployed", done["serial"]), ("renew", "deployed", after["serial"])]
        assert served_sha256(nginx.port) == after["sha256"]
        # The client trusting only the private root never failed, before or after.
        assert prober.failures == []
        # Served first the replacement, last the renewal, and nothing else. (While old
        # workers drain after a graceful reload a new connection may still meet the old
        # certificate once more: that is a success, and so counted.)
        assert prober.seen[0] == done["new_sha256"]
        assert prober.seen[-1] == after["sha256"]
        assert set(prober.seen) == {done["new_sha256"], after["sha256"]}
        assert prober.ok > 20


def test_failing_reload_rolls_back(nginx: Nginx, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, nginx)
    with running(nginx) as old_sha:
        _discover(nginx, capsys)
        before = nginx.cert.read_bytes(), nginx.key.read_bytes()
        rc = main(["replace", "--apply", "--profile", "short", "--config", config,
                   "--reload", f"{nginx.reload_cmd} && echo 'reload refused' && exit 7"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 3
        assert len(err) == 1
        assert err[0].startswith(f"certwarden: rolled-back: file://{nginx.cert}")
        assert "failed (exit 7): reload refused" in err[0]
        # The files are back, and nginx (reloaded again) serves the old certificate.
        assert (nginx.cert.read_bytes(), nginx.key.read_bytes()) == before
        time.sleep(0.5)
        assert served_sha256(nginx.port) == old_sha
        assert main(["managed", "list", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == []


def test_server_keeping_the_old_certificate_rolls_back(
        nginx: Nginx, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, nginx, verify_timeout=3)
    with running(nginx) as old_sha:
        _discover(nginx, capsys)
        before = nginx.cert.read_bytes()
        # `true` reloads nothing: nginx keeps serving what it loaded at start.
        rc = main(["replace", "--apply", "--profile", "short", "--config", config,
                   "--reload", "true"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 3
        assert err == [f"certwarden: rolled-back: tls://127.0.0.1:{nginx.port}: verification "
                       f"failed after 3s: still serves {old_sha[:16]}…, not the new "
                       + err[0].split("not the new ")[1]]
        assert nginx.cert.read_bytes() == before
        assert served_sha256(nginx.port) == old_sha
