"""Hostile input to every command through ``main(argv)``: each is ONE line on stderr, exit 2,
no traceback, and nothing already stored is lost or changed."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from certwarden.cli import main

PASS = "hostile horse"


def _files(d: Path) -> None:
    (d / "junk").write_bytes(bytes(range(256)) * 16)
    (d / "empty").write_bytes(b"")
    (d / "adir").mkdir()
    (d / "file").write_text("a plain file, so file/sub is not a directory\n")
    (d / "notdb.sqlite").write_text("this is not an SQLite database\n")
    (d / "cfg-policy-list.yaml").write_text("policy: [1]\n")
    (d / "cfg-dns-int.yaml").write_text("policy: {allowed_dns: 5}\n")
    (d / "cfg-profiles-list.yaml").write_text("profiles: [1, 2]\n")
    (d / "cfg-ip-mapping.yaml").write_text('policy: {allowed_ip: ["10.0.0.0/8", {a: 1}]}\n')
    # nesting deeper than Python's recursion limit: a parser's RecursionError, not a traceback
    (d / "deep.yaml").write_text("rules: " + "[" * 5000 + "]" * 5000 + "\n")
    (d / "deep.json").write_text('{"items": ' + "[" * 5000 + "]" * 5000 + "}")


@pytest.fixture(scope="module")
def ca_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA for the module (``ca init`` costs a second); the failing cases must not touch it."""
    home = tmp_path_factory.mktemp("ca-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_DATA_HOME", str(home / "data"))
    mp.setenv("CERTWARDEN_CA_PASSPHRASE", PASS)
    mp.delenv("CERTWARDEN_DATABASE_URL", raising=False)
    try:
        assert main(["ca", "init", "--name", "Hostile CA"]) == 0
        assert main(["create", "self-signed", "example.com", "--out",
                     str(home / "good")]) == 0
        # A self-signed leaf in the inventory, so that ``replace`` has work to refuse.
        assert main(["discover", "files", str(home / "good.pem")]) == 0
    finally:
        mp.undo()
    return home


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca_home: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(ca_home / "data", data)
    for name in ("good.pem", "good-key.pem"):
        shutil.copy2(ca_home / name, tmp_path / name)
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", PASS)
    monkeypatch.delenv("CERTWARDEN_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    _files(tmp_path)
    return tmp_path


def _rows(db: Path) -> dict[str, set[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: set(conn.execute(f'SELECT * FROM "{t}"')) for t in tables}  # noqa: S608


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str, expected: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("certwarden: error: "), err
    assert "Traceback" not in err
    assert expected in lines[0], err


NOT_SQLITE = "sqlite:///notdb.sqlite"

CASES: list[tuple[list[str], str]] = [
    # --db naming a file that is not a database, or a path that cannot be one
    (["--db", NOT_SQLITE, "inventory", "list"], "file is not a database"),
    (["--db", NOT_SQLITE, "report"], "file is not a database"),
    (["--db", NOT_SQLITE, "ca", "list"], "file is not a database"),
    (["--db", NOT_SQLITE, "acme", "eab-add"], "file is not a database"),
    (["--db", NOT_SQLITE, "discover", "files", "adir"], "file is not a database"),
    (["--db", "sqlite:///file/sub/x.db", "inventory", "list"], "cannot open database"),
    (["--db", "postgresql://u:s3cret@host:badport/db", "inventory", "list"], "u:***@host"),
    (["--db", "postgresql://u:p@ss:s3cret@[::1/db", "inventory", "list"], "not a SQLAlchemy"),
    (["--db", "postgresql+nodriver://u:s3cret@127.0.0.1:1/db", "report"], "unsupported"),
    # absurd numbers
    (["inspect", "127.0.0.1:1", "--timeout", "nan"], "not a finite number"),
    (["inspect", "127.0.0.1:1", "--timeout", "1e308"], "not in the range"),
    (["scan", "127.0.0.1", "--timeout", "nan"], "not a finite number"),
    (["scan", "127.0.0.1", "--ports", ""], "names no port"),
    (["create", "self-signed", "example.com", "--days", "99999999999", "--out", "x"],
     "ends after the year 9998"),
    (["create", "ca", "--dir", "devca", "--name", ""], "cannot be empty"),
    (["ca", "issue", "--name", "a.example", "--key-out", "k.pem", "--lifetime-days", "nan"],
     "not a finite number"),
    (["ca", "issue", "--name", "a.example", "--key-out", "k.pem", "--lifetime-days", "inf"],
     "Invalid value for '--lifetime-days'"),
    (["ca", "issue", "--name", "a.example", "--key-out", "k.pem", "--lifetime-days", "1e300"],
     "not in the range"),
    (["ca", "issue", "--name", "a.example", "--key-out", "k.pem", "--lifetime-days", "0"],
     "not in the range"),
    (["ca", "list", "--limit", "99999999999999999999999"], "not in the range"),
    (["inventory", "changes", "--scan", "99999999999999999999999"], "no scan"),
    # outputs where nothing can be written
    (["create", "self-signed", "example.com", "--out", "file/sub"], "Not a directory"),
    (["create", "csr", "example.com", "--out", "file/sub"], "Not a directory"),
    (["create", "ca", "--dir", "file"], "cannot create the directory"),
    (["create", "ca", "--dir", "file/sub"], "cannot create the directory"),
    (["ca", "init", "--name", "Second", "--key-dir", "file/sub"], "Not a directory"),
    (["trust", "bundle", "--out", "file"], "cannot create the directory"),
    (["trust", "bundle", "--out", "file/sub"], "cannot create the directory"),
    (["demo", "--workdir", "file/sub"], "cannot create the directory"),
    # bad files and configuration
    (["inspect", "adir"], "no certificate found"),
    (["inspect", "good-key.pem"], "no certificate found"),
    (["traffic", "junk"], "junk: unreadable: not a pcap"),
    (["traffic", "empty"], "empty: unreadable"),
    (["ca", "init", "--name", "Second", "--config", "junk"], "not UTF-8 text"),
    (["ca", "init", "--name", "Second", "--config", "cfg-policy-list.yaml"],
     "policy must be a mapping"),
    (["ca", "init", "--name", "Second", "--config", "cfg-dns-int.yaml"], "must be a list"),
    (["ca", "init", "--name", "Second", "--config", "cfg-profiles-list.yaml"],
     "profiles must be a mapping"),
    (["ca", "init", "--name", "Second", "--config", "cfg-ip-mapping.yaml"],
     "must be a list of strings"),
    (["ca", "init", "--name", "Second", "--permit-dns", "..bad"], "not a DNS name suffix"),
    (["ca", "init", "--name", "Second", "--deny-dns", "a b"], "not a DNS name suffix"),
    (["ca", "list", "--ca", "nope"], "no CA named 'nope'"),
    (["ca", "issue", "--name", "a.example"], "--key-out is required"),
    (["replace", "--profile", "nope"], "unknown profile 'nope'"),
    (["trust", "bundle", "--out", "tb", "--storepass", ""], "password cannot be empty"),
    (["trust", "bundle", "--out", "tb", "--extra", "good-key.pem"], "no certificate in it"),
    (["trust", "bundle", "--out", "tb", "--namespace", "a\nb: c"], "not a Kubernetes namespace"),
    (["ca", "init", "--name", "Second", "--key", "PKCS11:token=a;object=b?pin-value=4321"],
     "not a pkcs11: URI"),
    (["report", "--policy", "deep.yaml"], "nested too deeply"),
    (["discover", "k8s", "--from-file", "deep.json"], "nested too deeply"),
    (["discover", "k8s", "--from-file", "deep.yaml"], "nested too deeply"),
    (["ca", "init", "--name", "Second", "--config", "deep.yaml"], "nested too deeply"),
    # endless inputs: refused at a limit instead of read until memory runs out
    (["inspect", "/dev/zero"], "larger than 64 MiB"),
    (["report", "--policy", "/dev/zero"], "larger than 1 MiB"),
    (["scan", "@/dev/zero"], "larger than 64 MiB"),
    (["ca", "issue", "/dev/zero"], "larger than 1 MiB"),
    (["ca", "init", "--name", "Second", "--config", "/dev/zero"], "larger than 1 MiB"),
    (["ca", "issue", "--name", "a.example", "--key-out", "k.pem", "--passphrase-file",
      "/dev/zero"], "larger than 64 KiB"),
]


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_line_exit_2(env: Path, capsys: pytest.CaptureFixture[str],
                                      argv: list[str], expected: str) -> None:
    db = env / "data" / "certwarden" / "inventory.db"
    before = _rows(db)
    code, _, err = _run(capsys, argv)
    _one_line_error(code, err, expected)
    assert "4321" not in err  # a PIN in a URI is never echoed
    assert "s3cret" not in err  # nor a database password
    # Nothing stored is lost (a scan may record its failed attempt); the CA issued nothing.
    after = _rows(db)
    assert all(before[t] <= after[t] for t in before)
    assert {t: after[t] for t in after if t.startswith("ca_")} == \
        {t: before[t] for t in before if t.startswith("ca_")}


def test_not_a_database_is_left_as_it_was(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (env / "notdb.sqlite").read_bytes()
    code, _, err = _run(capsys, ["--db", NOT_SQLITE, "inventory", "scans"])
    _one_line_error(code, err, "file is not a database")
    assert (env / "notdb.sqlite").read_bytes() == before


def test_key_out_over_an_existing_wide_file_ends_0600(env: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    target = env / "svc.key"
    target.write_text("old\n")
    os.chmod(target, 0o644)
    code, _, err = _run(capsys, ["ca", "issue", "--name", "svc.example", "--out", "svc.pem",
                                 "--key-out", str(target)])
    assert code == 0, err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in target.read_bytes()


def test_issue_without_key_out_issues_nothing(env: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, ["ca", "issue", "--name", "lost.example"])
    _one_line_error(code, err, "--key-out is required")
    assert "BEGIN CERTIFICATE" not in out
    _run(capsys, ["ca", "list", "--json"])
    assert _run(capsys, ["ca", "list", "--json"])[1].strip() == ""  # nothing was issued


def test_passphrase_file_wins_over_the_environment(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (env / "pass.txt").write_text(PASS + "\n")
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "wrong")
    code, _, err = _run(capsys, ["ca", "issue", "--name", "p.example", "--out", "p.pem",
                                 "--passphrase-file", "pass.txt"])
    assert code == 0, err
    (env / "binary-pass").write_bytes(b"\xff\xfe\x00")
    code, _, err = _run(capsys, ["ca", "issue", "--name", "p.example", "--out", "p.pem",
                                 "--passphrase-file", "binary-pass"])
    _one_line_error(code, err, "wrong passphrase")
    assert "\\xff" not in err


def test_unreadable_second_capture_is_still_a_warning(env: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, ["traffic", "--no-inventory", "junk", "empty"])
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1] == "certwarden: error: 2 of 2 captures could not be read"
    assert all(line.startswith("certwarden: warning: ") for line in lines[:-1])


def test_a_reader_that_stops_early_is_not_findings(env: Path) -> None:
    # ``certwarden ... | head``: stdout's reader is gone before the first write. click turns
    # that EPIPE into exit 1, which would read as "findings" in CI; it is exit 0, silently.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from certwarden.cli import main; sys.exit(main())",
             "report", "--show-policy"], stdout=write_end, stderr=subprocess.PIPE, check=False,
            timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr


@pytest.mark.parametrize("extra", [[], ["--workers", "2"], ["--no-acme"]])
def test_serve_on_a_port_in_use_is_one_line(env: Path, capsys: pytest.CaptureFixture[str],
                                            extra: list[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = _run(capsys, ["serve", "--no-warm", "--http", f"127.0.0.1:{port}",
                                     *extra])
    _one_line_error(code, err, f"cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize("resolver", ["127.0.0.1:99999", "127.0.0.1:0", "[::1]:70000"])
def test_serve_refuses_a_resolver_port_out_of_range(env: Path, resolver: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, ["serve", "--acme-resolver", resolver])
    _one_line_error(code, err, "resolver port must be 1-65535")


def test_encrypted_dev_ca_names_the_option_that_unlocks_it(
        env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, ["create", "ca", "--dir", "devca", "--passphrase", "pp"])[0] == 0
    code, _, err = _run(capsys, ["create", "leaf", "a.example", "--ca", "devca", "--out", "l"])
    _one_line_error(code, err, "--ca-passphrase")
    code, _, err = _run(capsys, ["create", "leaf", "a.example", "--ca", "devca", "--out", "l",
                                 "--ca-passphrase", "wrong"])
    _one_line_error(code, err, "cannot decrypt")
    assert "wrong" not in err  # the passphrase tried is not echoed
