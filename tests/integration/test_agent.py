"""``certwarden agent`` as a real process: one JSON line per action, a clean stop on SIGTERM,
its schedule kept in the database across restarts, and two agents on one database running
each scheduled slot once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from certwarden.cli import main
from certwarden.x509 import create as mk

ROOT = Path(__file__).resolve().parents[2]
CMD = [sys.executable, "-c", "import sys; from certwarden.cli import main; sys.exit(main())"]


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], str]:
    db = f"sqlite:///{tmp_path / 'inv.db'}"
    monkeypatch.setenv("CERTWARDEN_DATABASE_URL", db)
    certs = tmp_path / "certs"
    certs.mkdir()
    ss = mk.self_signed(["agent.test"])
    (certs / "agent.pem").write_text(ss.certificate.pem())
    config = tmp_path / "agent.yaml"
    config.write_text(f"""\
schedules:
  - {{name: sweep, job: files, every: 1h, paths: ["{certs}"]}}
  - {{name: nightly, job: files, cron: "0 3 * * *", paths: ["{certs}"]}}
  - {{job: renew, every: 1h}}
  - {{job: notify, every: 1h}}
""")
    env = {**os.environ, "CERTWARDEN_DATABASE_URL": db,
           "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return env, str(config)


def test_runs_rounds_logs_json_and_stops_on_sigterm(setup: tuple[dict[str, str], str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    env, config = setup
    proc = subprocess.Popen([*CMD, "agent", "--config", config], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(json.loads(line))
        if sum(r["action"] == "job" for r in lines) == 4:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines += [json.loads(line) for line in out.splitlines()]
    assert err == ""
    assert lines[0]["action"] == "agent-start"
    assert lines[-1]["action"] == "agent-stop"
    jobs = {r["name"]: r for r in lines if r["action"] == "job"}
    assert set(jobs) == {"sweep", "nightly", "renew", "notify"}
    assert all(r["outcome"] == "ok" for r in jobs.values())
    assert jobs["sweep"]["sightings"] == 1
    assert jobs["sweep"]["ownerless_self_signed"] == 1
    assert all("ts" in r for r in lines)

    # Restarted, it remembers: nothing is due for an hour (the nightly cron: until 03:00).
    again = subprocess.run([*CMD, "agent", "--once", "--config", config], env=env, text=True,
                           capture_output=True, timeout=60, check=True)
    assert again.stdout == ""
    assert main(["inventory", "scans", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2  # sweep + nightly, once each


def test_two_agents_run_each_slot_once(setup: tuple[dict[str, str], str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    env, config = setup
    procs = [subprocess.Popen([*CMD, "agent", "--once", "--config", config], env=env,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    runs = [json.loads(line)["name"] for out, _ in outs for line in out.splitlines()]
    assert sorted(runs) == ["nightly", "notify", "renew", "sweep"]
    assert main(["inventory", "scans", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
