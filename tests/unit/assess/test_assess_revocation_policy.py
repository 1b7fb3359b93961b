"""The policy's ``revocation`` section: off and nowhere by default; bad values are refused
with their line (issue 11 item 13: fetching is opt-in, to listed addresses only)."""

from __future__ import annotations

import pytest

from certwarden.assess import PolicyError, RevocationFetch, default_policy, parse_policy


def test_default_fetches_nothing_from_nowhere() -> None:
    assert default_policy().revocation == RevocationFetch(fetch=False, allow=())


def test_opt_in_with_an_allow_list() -> None:
    p = parse_policy("revocation:\n  fetch: true\n  allow: [127.0.0.1/32, CRL.Example.test]\n"
                     "  timeout_seconds: 2\n  max_bytes: 4096\n", source="p.yaml",
                     known_rules=None)
    assert p.revocation == RevocationFetch(fetch=True, allow=("127.0.0.1/32",
                                                              "crl.example.test"),
                                           timeout_seconds=2, max_bytes=4096)


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("revocation:\n  fetch: yes please\n", 2, "revocation.fetch must be true or false"),
    ("revocation:\n  allow: [10.0.0.0/33]\n", 2, "is not an address or CIDR"),
    ("revocation:\n  allow: ['http://x']\n", 2, "neither a host name nor an address"),
    ("revocation:\n  max_bytes: 10\n", 2, "at least 1024"),
    ("revocation:\n  fetch: true\n  everywhere: true\n", 3, "unknown key 'everywhere'"),
])
def test_bad_revocation_section_is_refused_with_its_line(text: str, line: int,
                                                         reason: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(text, source="p.yaml", known_rules=None)
    assert err.value.line == line
    assert reason in err.value.reason
