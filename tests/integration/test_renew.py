"""Renewal against real databases (SQLite, and PostgreSQL through tests/with-postgres.sh):
exactly once under two concurrent renewer processes, retries with backoff persisted in the
database, the reload hook's environment and timeout, and config errors with their line.

Real throughout: the private CA, the file sweep, the deploy mechanism on real files, two
``certwarden renew`` processes racing on one database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from certwarden.cli import main
from certwarden.x509 import create as mk
from certwarden.x509 import read_source
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
# 4 minutes (+1 min backdate); with renew_before 290s a certificate is due at once.
CA_CONFIG = "profiles:\n  short:\n    lifetime_days: 0.0028\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'inv.db'}"
        return
    base = os.environ.get("CERTWARDEN_TEST_POSTGRES_URL")
    if not base:
        if IN_CI:
            pytest.fail("CI=true but no PostgreSQL: run through tests/with-postgres.sh")
        pytest.skip("no PostgreSQL here: run through tests/with-postgres.sh")
    # A database of its own: other tests' schema resets must not race this one.
    from sqlalchemy import create_engine, text

    name = f"renew_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def estate(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CERTWARDEN_DATABASE_URL", db)
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "renew-test-passphrase")
    monkeypatch.setenv("CERTWARDEN_CA_DIR", str(tmp_path / "ca"))
    (tmp_path / "ca.yaml").write_text(CA_CONFIG)
    assert main(["ca", "init", "--name", "Renew CA", "--config", str(tmp_path / "ca.yaml")]) == 0
    return tmp_path


def _files(tmp: Path, n: int) -> Path:
    etc = tmp / "etc"
    etc.mkdir()
    for i in range(n):
        ss = mk.self_signed([f"svc{i}.test"])
        (etc / f"svc{i}.pem").write_text(ss.certificate.pem())
        mk.write_private(etc / f"svc{i}-key.pem", ss.key_pem())
    return etc


def _write(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def _replace(tmp: Path, config: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:  # type: ignore[type-arg]
    assert main(["discover", "files", str(tmp / "etc")]) == 0
    capsys.readouterr()
    assert main(["replace", "--apply", "--profile", "short", "--config", config, "--json"]) == 0
    return list(json.loads(capsys.readouterr().out))


def _managed(capsys: pytest.CaptureFixture[str], config: str | None = None) -> list[dict]:  # type: ignore[type-arg]
    assert main(["managed", "list", "--json", *(["--config", config] if config else [])]) == 0
    return list(json.loads(capsys.readouterr().out))


def test_two_concurrent_renewers_renew_each_certificate_once(
        estate: Path, capsys: pytest.CaptureFixture[str]) -> None:
    n = 6
    _files(estate, n)
    due_now = _write(estate, "register.yaml", "renewal: {jitter: 0, renew_before: 290s}\n")
    replaced = _replace(estate, due_now, capsys)
    assert [r["status"] for r in replaced] == ["replaced"] * n
    assert {m["state"] for m in _managed(capsys)} == {"due"}

    # Renewed, the next renewal is 100 s before the end: not due again during the race.
    later = _write(estate, "renew.yaml", "renewal: {jitter: 0, renew_before: 100s}\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    cmd = [sys.executable, "-c", "import sys; from certwarden.cli import main; sys.exit(main())",
           "renew", "--due", "--json", "--config", later]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    outcomes = [o for out, _ in outs for o in json.loads(out or "[]")]
    renewed = [o for o in outcomes if o["status"] == "renewed"]
    # Every certificate renewed exactly once, across both processes; the rest saw "busy".
    assert sorted(o["id"] for o in renewed) == sorted({m["id"] for m in _managed(capsys)})
    assert {o["status"] for o in outcomes} <= {"renewed", "busy"}
    managed = _managed(capsys, later)
    assert all([(a["kind"], a["outcome"]) for a in m["attempts"]] ==
               [("replace", "deployed"), ("renew", "deployed")] for m in managed)
    assert {m["state"] for m in managed} == {"ok"}
    # The CA issued n replacements and n renewals: not one more.
    assert main(["ca", "list", "--json"]) == 0
    issued = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(issued) == 2 * n
    assert sorted(i["serial"] for i in issued) == sorted(
        [r["serial"] for r in replaced] + [o["serial"] for o in renewed])
    # What each file holds now is the renewal that was recorded.
    for m in managed:
        path = m["locations"][0].removeprefix("file://")
        assert read_source(path).certificates[0].sha256 == m["sha256"]


def test_retries_back_off_then_fail_then_recover(estate: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    etc = _files(estate, 1)
    flag = estate / "reload-works"
    flag.touch()
    config = _write(estate, "lc.yaml", f"""\
renewal:
  jitter: 0
  renew_before: 290s
  retry: {{base: 2s, max: 3s, attempts: 2}}
deploy:
  - location: "file://{etc}/*"
    reload: "test -e {flag}"
""")
    [done] = _replace(estate, config, capsys)
    assert done["status"] == "replaced"
    deployed = (etc / "svc0.pem").read_bytes()
    flag.unlink()  # from now on the reload fails

    assert main(["renew", "--config", config]) == 3
    err = capsys.readouterr().err.strip()
    assert err == (f"certwarden: rolled-back: file://{etc}/svc0.pem: "
                   f"reload 'test -e {flag}' failed (exit 1)")
    [m] = _managed(capsys, config)
    assert (m["state"], m["failures"]) == ("retrying", 1)
    assert (etc / "svc0.pem").read_bytes() == deployed  # restored

    # The backoff is in the database: a new process does not retry before it ends.
    assert main(["renew", "--config", config]) == 0
    assert capsys.readouterr().out.strip() == "nothing to renew"
    time.sleep(2.2)
    assert main(["renew", "--config", config]) == 3
    capsys.readouterr()
    [m] = _managed(capsys, config)
    assert (m["state"], m["failures"]) == ("failed", 2)
    assert [a["outcome"] for a in m["attempts"]] == ["deployed", "rolled-back", "rolled-back"]

    flag.touch()
    time.sleep(3.2)  # the backoff is capped at max: 3 s
    assert main(["renew", "--config", config]) == 0
    capsys.readouterr()
    [m] = _managed(capsys, config)
    assert (m["state"], m["failures"]) == ("due", 0)  # renew_before 290s: due again at once
    assert [(a["kind"], a["outcome"]) for a in m["attempts"]] == [
        ("replace", "deployed"), ("renew", "rolled-back"), ("renew", "rolled-back"),
        ("renew", "deployed")]
    assert read_source(str(etc / "svc0.pem")).certificates[0].sha256 == m["sha256"]


def test_reload_hook_environment(estate: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    etc = _files(estate, 1)
    envfile = estate / "hook.env"
    config = _write(estate, "lc.yaml", f"""\
deploy:
  - location: "file://{etc}/*"
    reload: "env | grep ^CERTWARDEN_ | sort > {envfile}"
""")
    [done] = _replace(estate, config, capsys)
    assert done["status"] == "replaced"
    env = dict(line.split("=", 1) for line in envfile.read_text().splitlines())
    # Exactly these: the inherited CERTWARDEN_CA_PASSPHRASE (set here) is not passed on.
    assert env == {"CERTWARDEN_CERT_PATH": f"{etc}/svc0.pem",
                   "CERTWARDEN_CHAIN_PATH": "",
                   "CERTWARDEN_FULLCHAIN_PATH": f"{etc}/svc0.pem",
                   "CERTWARDEN_KEY_PATH": f"{etc}/svc0-key.pem",
                   "CERTWARDEN_LOCATION": f"file://{etc}/svc0.pem",
                   "CERTWARDEN_SERIAL": done["serial"],
                   "CERTWARDEN_SHA256": done["new_sha256"]}



def test_a_hanging_hook_is_killed_and_rolled_back(estate: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    etc = _files(estate, 1)
    pidfile = estate / "hook.pid"
    original = (etc / "svc0.pem").read_bytes(), (etc / "svc0-key.pem").read_bytes()
    config = _write(estate, "lc.yaml", f"""\
deploy:
  - location: "file://{etc}/*"
    reload: "echo $$ > {pidfile}; sleep 60"
    reload_timeout: 1
""")
    assert main(["discover", "files", str(etc)]) == 0
    capsys.readouterr()
    started = time.monotonic()
    rc = main(["replace", "--apply", "--config", config])
    elapsed = time.monotonic() - started
    assert rc == 3
    assert capsys.readouterr().err.strip() == (
        f"certwarden: rolled-back: file://{etc}/svc0.pem: reload 'echo $$ > {pidfile}; "
        "sleep 60' did not finish within 1s: killed")
    assert elapsed < 30  # two hook runs (deploy, rollback) of 1 s each, not 60 s
    assert ((etc / "svc0.pem").read_bytes(), (etc / "svc0-key.pem").read_bytes()) == original
    # The hook's shell (and its sleep, same process group) is gone.
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)
    assert _managed(capsys) == []


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("renewal:\n  jitter: 0\n  renew_befor: 2d\n", 3, "unknown key 'renew_befor' in renewal"),
    ("schedules:\n  - job: renew\n    cron: '61 * * * *'\n", 3, "not a cron expression"),
    ("schedules:\n  - job: dance\n    every: 1m\n", 2, "unknown job 'dance'"),
    ("schedules:\n  - job: scan\n    every: soon\n", 3, "not a duration: 'soon'"),
    ("deploy:\n  - reload: nginx -s reload\n", 2, "'location' is required"),
    ("deploy:\n  - location: x\n    verify: ['https://a:1']\n", 3, "not a tls://host:port"),
])
def test_config_errors_name_their_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, text: str, line: int,
                                       reason: str) -> None:
    monkeypatch.setenv("CERTWARDEN_DATABASE_URL", f"sqlite:///{tmp_path / 'inv.db'}")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for argv in (["agent", "--once"], ["renew"], ["managed", "list"]):
        assert main([*argv, "--config", str(path)]) == 2
        [err] = capsys.readouterr().err.strip().splitlines()
        assert err.startswith(f"certwarden: error: {path}:{line}: "), err
        assert reason in err


def test_a_dead_renewers_lease_expires_and_the_work_is_taken_over(db: str) -> None:
    import datetime as dt

    from certwarden.store.managed import ManagedStore
    from certwarden.store.managed_records import KeyPolicy, NewManaged

    now = dt.datetime.now(dt.UTC)
    with ManagedStore.open(db) as store:
        mid = store.put(NewManaged(
            names=("a.test",), profile="tls-server", key_policy=KeyPolicy.NEW,
            renew_before=None, recipe={"targets": []}, locations=("file:///a.pem",),
            serial="01", sha256="ab" * 32, not_before=now - dt.timedelta(days=20),
            not_after=now + dt.timedelta(days=10), renew_at=now - dt.timedelta(days=1)))
        [m] = store.all()
        lease = dt.timedelta(seconds=30)
        assert store.claim(m, owner="host-a:1", lease=lease, now=now)
        # host-a dies holding it: nobody else may take it while the lease runs ...
        assert not store.claim(m, owner="host-b:2", lease=lease, now=now + dt.timedelta(seconds=29))
        # ... and afterwards host-b does, once; host-a's late result is not recorded.
        later = now + dt.timedelta(seconds=31)
        assert store.claim(m, owner="host-b:2", lease=lease, now=later)
        assert not store.renewed(mid, owner="host-a:1", serial="02", sha256="cd" * 32,
                                 not_before=later, not_after=later + dt.timedelta(days=30),
                                 renew_at=later + dt.timedelta(days=20))
        assert store.renewed(mid, owner="host-b:2", serial="03", sha256="ef" * 32,
                             not_before=later, not_after=later + dt.timedelta(days=30),
                             renew_at=later + dt.timedelta(days=20))
        [after] = store.all()
        assert (after.serial, after.generation, after.lease_owner) == ("03", 1, None)
        # The row read before the renewal can no longer be claimed: it was renewed since.
        assert not store.claim(m, owner="host-c:3", lease=lease, now=later)


def test_dry_run_and_location_select_without_issuing(estate: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _files(estate, 2)
    due_now = _write(estate, "register.yaml", "renewal: {jitter: 0, renew_before: 290s}\n")
    replaced = _replace(estate, due_now, capsys)
    assert main(["renew", "--dry-run", "--json", "--location", "*/svc1.pem"]) == 0
    [planned] = json.loads(capsys.readouterr().out)
    assert (planned["names"], planned["status"]) == (["svc1.test"], "planned")
    assert main(["renew", "--dry-run", "--location", "file:///nowhere/*"]) == 0
    assert capsys.readouterr().out.strip() == "nothing to renew"
    assert main(["ca", "list", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(replaced)  # nothing issued
    # The table names each one with its state and next renewal.
    assert main(["managed", "list"]) == 0
    table = capsys.readouterr().out
    assert "2 managed certificate(s)" in table
    assert table.count(" due ") == 2
