"""Targets and ports: every accepted form, and one clear error for each bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from certwarden.discovery.starttls import LDAP_STARTTLS, sniff
from certwarden.discovery.targets import (
    DEFAULT_PORTS,
    Endpoint,
    Starttls,
    count_endpoints,
    endpoints,
    parse_ports,
    parse_target,
    read_targets,
)
from certwarden.errors import UsageError


def test_ports_lists_and_ranges() -> None:
    assert parse_ports("443, 8443,1000-1003,443") == (443, 8443, 1000, 1001, 1002, 1003)
    for port in (443, 8443, 636, 993, 995, 465, 25, 587, 110, 143, 21, 389, 5222, 5432, 3306,
                 3389, 6443, 9443):
        assert port in DEFAULT_PORTS


@pytest.mark.parametrize("bad", ["", "0", "65536", "a", "5-3", "1-", "-5", "1-70000"])
def test_bad_ports(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_ports(bad)


@pytest.mark.parametrize(("text", "hosts", "port"), [
    ("example.test", ["example.test"], None),
    ("Example.TEST.", ["example.test"], None),
    ("10.1.2.3", ["10.1.2.3"], None),
    ("10.1.2.3:8443", ["10.1.2.3"], 8443),
    ("::1", ["::1"], None),
    ("[::1]:636", ["::1"], 636),
    ("[2001:db8::1]", ["2001:db8::1"], None),
    ("192.0.2.0/30", ["192.0.2.1", "192.0.2.2"], None),
    ("192.0.2.7/32", ["192.0.2.7"], None),
    ("192.0.2.8/31:443", ["192.0.2.8", "192.0.2.9"], 443),
    ("2001:db8::/126", ["2001:db8::1", "2001:db8::2", "2001:db8::3"], None),
    ("10.0.0.5-7", ["10.0.0.5", "10.0.0.6", "10.0.0.7"], None),
    ("host.test:25", ["host.test"], 25),
])
def test_targets(text: str, hosts: list[str], port: int | None) -> None:
    spec = parse_target(text)
    assert list(spec) == hosts
    assert len(spec) == len(hosts)
    assert spec.port == port


@pytest.mark.parametrize("bad", ["", "host:0", "host:x", "[::1", "[::1]x", "999.1.1.1",
                                 "10.0.0.0/33", "10.0.0.9-3", "10.0.0.1-300", "bad_host!",
                                 "1.2.3", "0.0.0.0/8"])
def test_bad_targets(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_target(bad)


def test_target_file(tmp_path: Path) -> None:
    f = tmp_path / "targets.txt"
    f.write_text("# estate\nweb.test\n\n10.0.0.1:443  # the gateway\n10.0.0.8/31\n")
    specs = read_targets([f"@{f}", "db.test"])
    assert [list(s) for s in specs] == [["web.test"], ["10.0.0.1"], ["10.0.0.8", "10.0.0.9"],
                                        ["db.test"]]
    f.write_text("ok.test\nnot a host\n")
    with pytest.raises(UsageError, match=r"targets.txt:2"):
        read_targets([f"@{f}"])


def test_endpoints_interleave_hosts_and_use_sni_for_names() -> None:
    specs = read_targets(["10.0.0.1-2", "web.test:8443"])
    eps = list(endpoints(specs, (443, 25)))
    assert eps[:4] == [Endpoint(host="10.0.0.1", port=443), Endpoint(host="10.0.0.2", port=443),
                       Endpoint(host="10.0.0.1", port=25), Endpoint(host="10.0.0.2", port=25)]
    assert eps[4] == Endpoint(host="web.test", port=8443, sni="web.test")
    assert count_endpoints(specs, (443, 25)) == len(eps) == 5
    with_sni = list(endpoints(specs[:1], (443,), snis=("a.test", "b.test")))
    assert [e.sni for e in with_sni] == ["a.test", "b.test", "a.test", "b.test"]
    assert count_endpoints(specs[:1], (443,), ("a.test", "b.test")) == 4


def test_banners_name_their_protocol() -> None:
    assert sniff(b"220 mx.test ESMTP Postfix\r\n") is Starttls.SMTP
    assert sniff(b"220 (vsFTPd 3.0.5)\r\n") is Starttls.FTP
    assert sniff(b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n") is Starttls.IMAP
    assert sniff(b"+OK Dovecot ready.\r\n") is Starttls.POP3
    assert sniff(b"J\x00\x00\x00\x0a8.0.36\x00") is Starttls.MYSQL
    assert sniff(b"SSH-2.0-OpenSSH_9.6\r\n") is None
    # The StartTLS ExtendedRequest is the exact BER of RFC 4511 section 4.14.1.
    assert LDAP_STARTTLS.hex() == (
        "301d02010177188016" + b"1.3.6.1.4.1.1466.20037".hex())


def test_overlapping_targets_probe_once() -> None:
    specs = read_targets(["::1", "[::1]:443", "10.0.0.1-2", "10.0.0.2"])
    eps = list(endpoints(specs, (443,)))
    assert sorted((e.host, e.port) for e in eps) == [("10.0.0.1", 443), ("10.0.0.2", 443),
                                                     ("::1", 443)]


def test_sni_given_per_target_applies_to_that_targets_ports_only() -> None:
    # issue 11 item 10: NAME@TARGET is that target's name; --sni is for the others.
    specs = read_targets(["app.internal@127.0.0.1", "127.0.0.2:8443"])
    eps = list(endpoints(specs, (443, 8443), snis=("global.test",)))
    assert [(e.host, e.port, e.sni) for e in eps] == [
        ("127.0.0.1", 443, "app.internal"), ("127.0.0.1", 8443, "app.internal"),
        ("127.0.0.2", 8443, "global.test")]
    assert count_endpoints(specs, (443, 8443), ("global.test",)) == len(eps)
    assert [e.sni for e in endpoints(read_targets(["127.0.0.3"]), (443,))] == [None]


@pytest.mark.parametrize("bad", ["@127.0.0.1", "10.0.0.1@127.0.0.1", "a@b@127.0.0.1",
                                 "bad_name!@127.0.0.1"])
def test_bad_per_target_sni(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_target(bad)
