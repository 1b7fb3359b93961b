"""The file sweep on real trees: formats by content, key pairing, the things it must skip."""

from __future__ import annotations

import base64
import os
import pwd
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from certwarden.discovery.files import SweepOptions, key_problems, sweep
from certwarden.records import Outcome as FileOutcome  # one outcome record for every source
from certwarden.records import OutcomeStatus as FileStatus
from certwarden.records import Sighting
from discovery_support import issue, write_pem


def _split(results: list[Sighting | FileOutcome]) -> tuple[list[Sighting], list[FileOutcome]]:
    return ([r for r in results if isinstance(r, Sighting)],
            [r for r in results if isinstance(r, FileOutcome)])


def test_formats_found_by_content_not_name(tmp_path: Path) -> None:
    a, b, c = issue("a.files.test"), issue("b.files.test"), issue("c.files.test")
    write_pem(tmp_path / "bundle.txt", b"intro text\n", a.pem, b"\n", b.pem)
    (tmp_path / "cert.bin").write_bytes(c.der)  # DER, name says nothing
    (tmp_path / "c.b64").write_text(base64.b64encode(c.der).decode())
    (tmp_path / "notes.txt").write_text("0 is a number, not DER\n")
    (tmp_path / "random.dat").write_bytes(os.urandom(2048))
    sightings, outcomes = _split(list(sweep([str(tmp_path)])))
    got = sorted((Path(s.location.path or "").name, s.position, s.certificate.subject)
                 for s in sightings)
    assert got == [("bundle.txt", 0, "CN=a.files.test"), ("bundle.txt", 1, "CN=b.files.test"),
                   ("c.b64", 0, "CN=c.files.test"), ("cert.bin", 0, "CN=c.files.test")]
    assert all(o.status is FileStatus.OK for o in outcomes)
    assert all(s.file_owner and s.file_mode == 0o644 for s in sightings)


def test_keys_pair_by_public_key_across_directories(tmp_path: Path) -> None:
    leaf = issue("paired.test")
    other = issue("encrypted.test")
    lone = issue("lonely.test")
    (tmp_path / "certs").mkdir()
    (tmp_path / "private").mkdir()
    write_pem(tmp_path / "certs" / "server.crt", leaf.pem)
    write_pem(tmp_path / "private" / "server.key", leaf.key_pem(), mode=0o640)
    write_pem(tmp_path / "certs" / "enc.crt", other.pem)
    write_pem(tmp_path / "private" / "enc.key", other.key_pem(b"s3cret"), mode=0o600)
    write_pem(tmp_path / "private" / "orphan.key", lone.key_pem(), mode=0o600)
    sightings, outcomes = _split(list(sweep([str(tmp_path)],
                                            SweepOptions(passwords=(b"s3cret",)))))
    keys = {s.certificate.subject: s.key for s in sightings}
    plain, enc = keys["CN=paired.test"], keys["CN=encrypted.test"]
    assert plain is not None
    assert enc is not None
    assert (plain.path, plain.encrypted, plain.mode) == (
        str(tmp_path / "private" / "server.key"), False, 0o640)
    assert key_problems(plain) == ["unencrypted", "group-readable (0640)"]
    assert (enc.path, enc.encrypted, key_problems(enc)) == (
        str(tmp_path / "private" / "enc.key"), True, [])
    orphans = [o for o in outcomes if o.status is FileStatus.ORPHAN_KEY]
    assert [(Path(o.location).name, o.reason) for o in orphans] == [("orphan.key", "unencrypted")]


def test_keystores_and_their_passwords(tmp_path: Path) -> None:
    import jks

    leaf = issue("p12.test")
    p12 = pkcs12.serialize_key_and_certificates(
        b"alias", leaf.key, leaf.cert, None,
        serialization.BestAvailableEncryption(b"changeit"))
    (tmp_path / "store.pfx").write_bytes(p12)
    trusted = issue("jks.trusted.test", ca=True)
    entry = jks.TrustedCertEntry.new("trusted", trusted.der)
    jks.KeyStore.new("jks", [entry]).save(str(tmp_path / "trust.jks"), "storepass")
    no_pw = _split(list(sweep([str(tmp_path)])))
    assert sorted(o.status for o in no_pw[1]) == [FileStatus.NEEDS_PASSWORD] * 2
    assert no_pw[0] == []
    sightings, outcomes = _split(list(sweep(
        [str(tmp_path)], SweepOptions(passwords=(b"wrong", b"changeit", b"storepass")))))
    by_name = {Path(s.location.path or "").name: s for s in sightings}
    assert by_name["store.pfx"].certificate == leaf.record
    key = by_name["store.pfx"].key
    assert key is not None
    assert key.encrypted
    assert by_name["trust.jks"].certificate == trusted.record
    assert by_name["trust.jks"].key is None
    assert {o.status for o in outcomes} == {FileStatus.OK}


def test_skips_fifo_loops_big_files_and_pseudo_filesystems(tmp_path: Path) -> None:
    cert = issue("skip.test")
    write_pem(tmp_path / "ok.pem", cert.pem)
    os.mkfifo(tmp_path / "fifo.pem")  # opening it would block forever
    (tmp_path / "loop").symlink_to(tmp_path)
    (tmp_path / "dangling.pem").symlink_to(tmp_path / "missing")
    (tmp_path / "alias.pem").symlink_to(tmp_path / "ok.pem")  # same inode: read once
    big = tmp_path / "big.pem"
    big.write_bytes(cert.pem + b"#" * 5000)
    sightings, outcomes = _split(list(sweep([str(tmp_path)], SweepOptions(max_size=4096))))
    # One inode, read once: under the first name the sorted walk meets.
    assert [Path(s.location.path or "").name for s in sightings] == ["alias.pem"]
    statuses = sorted((Path(o.location).name, o.status) for o in outcomes)
    assert ("big.pem", FileStatus.TOO_LARGE) in statuses
    assert ("loop", FileStatus.LOOP) in statuses
    assert not any(name == "fifo.pem" for name, _ in statuses)
    assert list(sweep(["/proc/self", "/sys/kernel"])) == []


def test_broken_certificate_file_is_an_outcome(tmp_path: Path) -> None:
    (tmp_path / "broken.crt").write_text(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    sightings, outcomes = _split(list(sweep([str(tmp_path)])))
    assert sightings == []
    [o] = outcomes
    assert o.status is FileStatus.BROKEN
    assert o.reason


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a file to another user")
def test_owner_is_recorded(tmp_path: Path) -> None:
    cert = issue("owner.test")
    path = write_pem(tmp_path / "owned.pem", cert.pem)
    os.chown(path, 65534, 65534)
    [s] = [r for r in sweep([str(tmp_path)]) if isinstance(r, Sighting)]
    try:  # the name of uid 65534 depends on the system's passwd (nobody, nfsnobody, ...)
        expected = pwd.getpwuid(65534).pw_name
    except KeyError:
        expected = "65534"
    assert s.file_owner == expected
