"""Property: whatever bytes arrive, parsing ends in a record or a one-line ParseError."""

from __future__ import annotations

import base64

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certwarden.errors import ParseError
from certwarden.x509 import create as mk
from certwarden.x509 import parse_bytes

_CA = mk.dev_ca("Fuzz CA")
_LEAF = mk.leaf(_CA, ["fuzz.test"])
_X = cx509.load_der_x509_certificate(_LEAF.certificate.der)
SEEDS = [
    _LEAF.certificate.der,
    _LEAF.certificate.pem().encode(),
    base64.encodebytes(_LEAF.certificate.der),
    pkcs7.serialize_certificates([_X], serialization.Encoding.DER),
    pkcs12.serialize_key_and_certificates(b"f", _LEAF.key, _X, None,  # type: ignore[arg-type]
                                          serialization.NoEncryption()),
    b"\xfe\xed\xfe\xed" + _LEAF.certificate.der,
]


def _parse(data: bytes) -> None:
    try:
        parsed = parse_bytes(data, source="fuzz")
    except ParseError as exc:
        message = str(exc)
    else:
        for cert in parsed.certificates:
            cert.as_dict()  # every lazily decoded field too
        return
    assert "\n" not in message
    assert message.startswith("fuzz")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.integers(min_value=0, max_value=2000),
       st.binary(min_size=1, max_size=8))
def test_mutated_containers(seed: bytes, at: int, patch: bytes) -> None:
    at %= len(seed)
    _parse(seed[:at] + patch + seed[at + len(patch):])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SEEDS), st.integers(min_value=1, max_value=2000))
def test_truncated_containers(seed: bytes, cut: int) -> None:
    _parse(seed[: cut % len(seed)])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    _parse(data)
