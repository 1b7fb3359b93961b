"""Name syntax, SPIFFE ID rules (spiffe/standards SPIFFE-ID.md) and the name policy."""

from __future__ import annotations

import ipaddress

import pytest

from certwarden.ca.errors import RequestRefused
from certwarden.ca.names import NameKind, parse_name, spiffe_id
from certwarden.ca.policy import CaConfig, NamePolicy
from certwarden.errors import UsageError


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("App.Internal.", NameKind.DNS, "app.internal"),
    ("*.svc.internal", NameKind.DNS, "*.svc.internal"),
    ("10.0.0.1", NameKind.IP, "10.0.0.1"),
    ("IP:::1", NameKind.IP, "::1"),
    ("spiffe://example.org/ns/prod/sa/web", NameKind.URI, "spiffe://example.org/ns/prod/sa/web"),
])
def test_names_are_classified(text: str, kind: NameKind, value: str) -> None:
    n = parse_name(text)
    assert (n.kind, n.value) == (kind, value)


@pytest.mark.parametrize("bad", ["", "-a.internal", "a..internal", "a_b.internal",
                                 "x" * 64 + ".internal", "a.*.internal"])
def test_bad_dns_names_are_refused(bad: str) -> None:
    with pytest.raises(RequestRefused, match="not a valid DNS name"):
        parse_name(bad)


@pytest.mark.parametrize(("uri", "why"), [
    ("SPIFFE://example.org/a", "scheme"),
    ("spiffe:///a", "trust domain is empty"),
    ("spiffe://Example.org/a", "trust domain"),
    ("spiffe://example.org:8443/a", "trust domain"),
    ("spiffe://user@example.org/a", "trust domain"),
    ("spiffe://example.org/a/", "must not end"),
    ("spiffe://example.org/a//b", "bad path segment"),
    ("spiffe://example.org/a/../b", "bad path segment"),
    ("spiffe://example.org/a?x=1", "query"),
    ("spiffe://example.org/a#f", "fragment"),
    ("spiffe://example.org/" + "a" * 2048, "2048"),
])
def test_spiffe_id_rules(uri: str, why: str) -> None:
    with pytest.raises(RequestRefused, match=why):
        spiffe_id(uri)


def test_valid_spiffe_ids() -> None:
    assert spiffe_id("spiffe://example.org/ns/prod/sa/web") == ("example.org", "/ns/prod/sa/web")
    assert spiffe_id("spiffe://td-1.example_x") == ("td-1.example_x", "")


def test_policy_allow_deny_ip_and_trust_domain() -> None:
    policy = NamePolicy(allowed_dns=("internal",), denied_dns=("secret.internal",),
                        allowed_ip=(ipaddress.ip_network("10.0.0.0/8"),),
                        spiffe_trust_domains=("example.org",))
    policy.check([parse_name("app.internal"), parse_name("10.1.2.3"),
                  parse_name("spiffe://example.org/web")])
    cases = [("app.example.com", "dns-allow"), ("db.secret.internal", "dns-deny"),
             ("*.secret.internal", "dns-deny"), ("192.168.1.1", "ip-allow"),
             ("spiffe://evil.org/web", "spiffe-trust-domain")]
    for name, rule in cases:
        with pytest.raises(RequestRefused) as err:
            policy.check_one(parse_name(name))
        assert err.value.rule == rule


def test_suffix_match_is_label_aligned() -> None:
    policy = NamePolicy(allowed_dns=("internal",))
    with pytest.raises(RequestRefused):
        policy.check_one(parse_name("app.notinternal"))


def test_config_roundtrip_and_bad_values() -> None:
    cfg = CaConfig.from_mapping({"base_url": "https://pki.example", "policy": {
        "allowed_ip": ["10.0.0.0/8"]}, "profiles": {"p": {"lifetime_days": 5}}})
    again = CaConfig.from_mapping(cfg.as_dict())
    assert again.as_dict() == cfg.as_dict()
    assert again.crl_url("x") == "https://pki.example/crl/x.crl"
    with pytest.raises(UsageError, match="base URL"):
        CaConfig.from_mapping({"base_url": "ftp://x"})
    with pytest.raises(UsageError, match="policy"):
        CaConfig.from_mapping({"policy": {"allowed_ip": ["not-a-net"]}})
    with pytest.raises(UsageError, match="capped"):
        CaConfig.from_mapping({"profiles": {"p": {"max_lifetime_days": 400}}})
    with pytest.raises(UsageError, match="extended key usage"):
        CaConfig.from_mapping({"profiles": {"p": {"extended_key_usage": ["bogus"]}}})
