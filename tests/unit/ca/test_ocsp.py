"""The OCSP responder (RFC 6960): statuses, nonce, caching, and bad requests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from certwarden.ca import Authority, CertStatus, MemoryLedger
from certwarden.ca.hierarchy import InitResult
from certwarden.ca.publish import Publisher

MakeCsr = Callable[..., bytes]
# CertIDs hash with SHA-1: RFC 5019 2.1.1 mandates it and every client sends it.
SHA1 = hashes.SHA1


@pytest.fixture
def publisher(ledger: MemoryLedger, authority: Authority) -> Publisher:
    # poll 0: every request re-checks the revision, so a revocation shows at once
    return Publisher(ledger, {authority.issuer.name: authority.signer}, poll_seconds=0.0)


def _request(leaf_der: bytes, issuer: x509.Certificate, *, nonce: bytes | None = None,
             algorithm: hashes.HashAlgorithm | None = None, serial: int | None = None) -> bytes:
    leaf = x509.load_der_x509_certificate(leaf_der)
    b = ocsp.OCSPRequestBuilder()
    if serial is None:
        b = b.add_certificate(leaf, issuer, algorithm or SHA1())  # type: ignore[arg-type]
    else:
        req = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, SHA1()).build()
        b = b.add_certificate_by_hash(req.issuer_name_hash, req.issuer_key_hash, serial,
                                      SHA1())
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


def test_good_revoked_unknown(csr: MakeCsr, authority: Authority, publisher: Publisher,
                              hierarchy: InitResult) -> None:
    inter = hierarchy.intermediate.certificate
    chain = authority.issue(csr("o.internal"))
    good = publisher.responder.respond(_request(chain.leaf_der, inter))
    assert good.status is CertStatus.GOOD
    parsed = ocsp.load_der_ocsp_response(good.der)
    assert parsed.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert parsed.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert parsed.serial_number == int(chain.serial, 16)
    public = inter.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(parsed.signature, parsed.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    assert parsed.next_update_utc is not None
    assert parsed.next_update_utc - parsed.this_update_utc == dt.timedelta(hours=24)

    authority.revoke(chain.serial, "keyCompromise")
    revoked = ocsp.load_der_ocsp_response(
        publisher.responder.respond(_request(chain.leaf_der, inter)).der)
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason is x509.ReasonFlags.key_compromise

    unknown = publisher.responder.respond(_request(chain.leaf_der, inter, serial=0x1234))
    assert unknown.status is CertStatus.UNKNOWN
    assert ocsp.load_der_ocsp_response(unknown.der).certificate_status \
        is ocsp.OCSPCertStatus.UNKNOWN


def test_nonce_is_echoed_and_such_answers_are_not_cached(
        csr: MakeCsr, authority: Authority, publisher: Publisher,
        hierarchy: InitResult) -> None:
    chain = authority.issue(csr("n.internal"))
    inter = hierarchy.intermediate.certificate
    answer = publisher.responder.respond(_request(chain.leaf_der, inter, nonce=b"0123456789abcdef"))
    parsed = ocsp.load_der_ocsp_response(answer.der)
    assert parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce \
        == b"0123456789abcdef"
    assert not answer.cacheable


def test_answers_without_nonce_are_presigned_and_reused(
        csr: MakeCsr, authority: Authority, publisher: Publisher,
        hierarchy: InitResult) -> None:
    chain = authority.issue(csr("c.internal"))
    assert publisher.responder.warm() >= 2  # sha1 and sha256 for the one leaf
    inter = hierarchy.intermediate.certificate
    first = publisher.responder.respond(_request(chain.leaf_der, inter))
    second = publisher.responder.respond(_request(chain.leaf_der, inter))
    assert first.der == second.der  # ECDSA signatures are randomised: same bytes = cached
    sha256 = publisher.responder.respond(_request(chain.leaf_der, inter,
                                                  algorithm=hashes.SHA256()))
    assert ocsp.load_der_ocsp_response(sha256.der).hash_algorithm.name == "sha256"
    authority.revoke(chain.serial, "superseded")
    third = publisher.responder.respond(_request(chain.leaf_der, inter))
    assert third.status is CertStatus.REVOKED  # the change invalidated the cache


def test_malformed_and_unknown_issuer(csr: MakeCsr, authority: Authority,
                                      publisher: Publisher) -> None:
    bad = ocsp.load_der_ocsp_response(publisher.responder.respond(b"\x30\x03junk").der)
    assert bad.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    chain = authority.issue(csr("u.internal"))
    leaf = x509.load_der_x509_certificate(chain.leaf_der)
    other = ocsp.load_der_ocsp_response(publisher.responder.respond(
        _request(chain.leaf_der, leaf)).der)  # the leaf pretending to be the issuer
    assert other.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_any_bytes_get_a_well_formed_ocsp_answer(publisher: Publisher) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.binary(max_size=300))
    def check(data: bytes) -> None:
        answer = publisher.responder.respond(data)
        parsed = ocsp.load_der_ocsp_response(answer.der)  # never an exception, never a 500
        assert parsed.response_status in (ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
                                          ocsp.OCSPResponseStatus.UNAUTHORIZED)

    check()
