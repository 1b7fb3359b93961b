"""Each detection rule with a vector that fires and one that does not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import Name, NameAttribute
from cryptography.x509.oid import NameOID

from certwarden.errors import ParseError
from certwarden.traffic import alerts as a
from certwarden.traffic.session import TlsSession
from certwarden.x509 import Certificate
from tests.unit.traffic.conftest import make_cert

T0 = dt.datetime(2023, 11, 10, tzinfo=dt.UTC)


def _ctx(der: bytes, *, known: bool | None = None, blocklist: a.Blocklist | None = None,
         ja3: str | None = None) -> a.Context:
    cert = Certificate.from_der(der)
    s = TlsSession(capture="c.pcap", flow="tcp:10.0.0.1:1-10.0.0.2:443", transport="tcp",
                   client="10.0.0.1", client_port=1, server="10.0.0.2", server_port=443,
                   start=T0.timestamp(), end=T0.timestamp(), server_chain=(der,), ja3=ja3)
    return a.Context(session=s, leaf=cert, chain=(cert,), blocklist=blocklist or a.Blocklist(),
                     known=None if known is None else (lambda _h: known))


def _rules(ctx: a.Context) -> set[str]:
    return {x.rule for x in a.evaluate(ctx)}


def _issued() -> bytes:
    ca = ec.generate_private_key(ec.SECP256R1())
    return make_cert(issuer_key=ca,
                     issuer_name=Name([NameAttribute(NameOID.COMMON_NAME, "Some CA")]))


def test_rule_ids_are_unique() -> None:
    ids = [rid for rid, _ in a.RULES]
    assert len(ids) == len(set(ids))


def test_self_signed_server_fires_only_for_self_signed() -> None:
    assert "self-signed-server" in _rules(_ctx(make_cert()))
    assert "self-signed-server" not in _rules(_ctx(_issued()))


def test_unknown_self_signed_respects_the_inventory() -> None:
    der = make_cert()
    fired = [x for x in a.evaluate(_ctx(der, known=False)) if x.rule == "unknown-self-signed"]
    assert fired
    assert fired[0].evidence["inventory"] == "not registered"
    assert "unknown-self-signed" not in _rules(_ctx(der, known=True))
    no_inv = [x for x in a.evaluate(_ctx(der)) if x.rule == "unknown-self-signed"]
    assert no_inv[0].evidence["inventory"] == "no inventory in use"


def test_sslbl_certificate_and_ja3(tmp_path: Path) -> None:
    der = make_cert()
    sha1 = Certificate.from_der(der).sha1
    cert_list = tmp_path / "sslbl.csv"
    cert_list.write_text("# header\n# Listingdate,SHA1,Listingreason\n"
                         f"2023-11-01 10:00:00,{sha1},Cobalt Strike C&C\n")
    ja3_list = tmp_path / "ja3.csv"
    ja3_list.write_text("# ja3_md5,Firstseen,Lastseen,Listingreason\n"
                        "72a589da586844d7f0818ce684948eea,2017-01-01,2023-01-01,Test family\n")
    bl = a.Blocklist.load([str(cert_list), str(ja3_list)])
    found = a.evaluate(_ctx(der, blocklist=bl, ja3="72a589da586844d7f0818ce684948eea"))
    by_rule = {x.rule: x for x in found}
    assert by_rule["sslbl-certificate"].evidence["sha1"] == sha1
    assert "Cobalt Strike" in by_rule["sslbl-certificate"].evidence["listing"]
    assert by_rule["known-bad-fingerprint"].evidence["listing"] == "Test family"
    assert "sslbl-certificate" not in _rules(_ctx(make_cert(), blocklist=bl))


def test_real_sslbl_snapshot_loads() -> None:
    from tests.conftest import require_corpus

    bl = a.Blocklist.load([str(require_corpus("sslbl", "sslblacklist.csv"))])
    assert len(bl.sha1) > 5000


def test_blocklist_that_is_not_one(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("hello,world\n")
    with pytest.raises(ParseError, match="no SHA-1"):
        a.Blocklist.load([str(p)])


def test_placeholder_subject() -> None:
    fired = [x for x in a.evaluate(_ctx(make_cert("svc", org="Internet Widgits Pty Ltd")))
             if x.rule == "c2-placeholder-subject"]
    assert fired
    assert fired[0].evidence["matched"] == "O=Internet Widgits Pty Ltd"
    assert "c2-placeholder-subject" not in _rules(_ctx(make_cert("svc", org="Acme Bank plc")))


def test_random_subject() -> None:
    assert "c2-random-subject" in _rules(_ctx(make_cert("xk7q9zt2wp4m.net", sans=())))
    assert "c2-random-subject" not in _rules(_ctx(make_cert("mailserver01.example.org")))


def test_ip_only_and_empty_names() -> None:
    assert "c2-ip-only-name" in _rules(_ctx(make_cert("192.0.2.7", sans=())))
    assert "c2-empty-name" in _rules(_ctx(make_cert(None, sans=())))
    rules = _rules(_ctx(make_cert()))
    assert "c2-ip-only-name" not in rules
    assert "c2-empty-name" not in rules


def test_odd_validity() -> None:
    assert "c2-odd-validity" in _rules(_ctx(make_cert(days=0.5)))
    assert "c2-odd-validity" in _rules(_ctx(make_cert(days=36500)))
    old = make_cert(not_before=T0 - dt.timedelta(days=5000), days=6000)
    assert "c2-old-not-before" in _rules(_ctx(old))
    ok = _rules(_ctx(make_cert(days=90)))
    assert "c2-odd-validity" not in ok
    assert "c2-old-not-before" not in ok
