"""The identifiers the CA hands callers with each leaf: RFC 9773's ARI id, RFC 5280 reason
numbers (ACME's ``reason``) back to the CA's own reason names."""

from __future__ import annotations

import pytest

from certwarden.ca.model import RevocationReason, ari_id


def test_ari_id_matches_the_rfc_9773_example() -> None:
    # RFC 9773 §4.1: keyIdentifier 69:88:5B:..:D4 and serial 0x0087654321 (leading 0x00 kept).
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    assert ari_id(aki, 0x87654321) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_reason_codes_round_trip_and_unknown_codes_are_refused() -> None:
    for reason in RevocationReason:
        assert RevocationReason.from_code(reason.code) is reason
    assert RevocationReason.from_code(1) is RevocationReason.KEY_COMPROMISE
    with pytest.raises(ValueError, match="code 7"):
        RevocationReason.from_code(7)
