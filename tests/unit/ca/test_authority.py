"""Issuing, refusing, revoking and CRLs with a MemoryLedger (no SQL, no HTTP)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from certwarden.ca import Authority, IssueRequest, MemoryLedger, RevocationReason
from certwarden.ca.errors import NotFound, RequestRefused
from certwarden.ca.hierarchy import InitResult
from certwarden.ca.model import AuditAction

MakeCsr = Callable[..., bytes]


def test_tls_server_leaf_has_the_profile_and_points_to_ocsp_and_crl(csr: MakeCsr,
        authority: Authority, hierarchy: InitResult) -> None:
    chain = authority.issue(csr("app.internal", "api.internal"), profile="tls-server",
                            requested_by="alice")
    leaf = x509.load_der_x509_certificate(chain.leaf_der)
    inter = hierarchy.intermediate.certificate
    assert chain.chain_der == (hierarchy.intermediate.certificate_der,)
    assert leaf.issuer == inter.subject
    leaf.verify_directly_issued_by(inter)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "app.internal"
    ext = leaf.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ext.get_extension_for_class(x509.BasicConstraints).critical
    ku = ext.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature
    assert not ku.key_cert_sign
    assert not ku.key_encipherment
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    assert ext.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.DNSName) == ["app.internal", "api.internal"]
    aia = ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [(d.access_method, d.access_location.value) for d in aia] == [
        (AuthorityInformationAccessOID.OCSP, "http://ca.test:8080/ocsp")]
    cdp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://ca.test:8080/crl/unit-ca.crl"
    # 128 random bits, stored in canonical hex, and 30 days by default
    assert chain.serial == f"{leaf.serial_number:032x}"
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=30,
                                                                                minutes=1)
    assert authority.ledger.issued(chain.serial) == chain.record
    assert chain.pem().count("BEGIN CERTIFICATE") == 2


def test_serials_are_random_and_distinct(csr: MakeCsr, authority: Authority) -> None:
    csr = csr("a.internal")
    serials = {authority.issue(csr).serial for _ in range(20)}
    assert len(serials) == 20
    assert all(len(s) == 32 for s in serials)


def test_rsa_leaf_gets_key_encipherment(csr: MakeCsr, authority: Authority) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = x509.load_der_x509_certificate(
        authority.issue(csr("rsa.internal", key=key)).leaf_der)
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


@pytest.mark.parametrize(("kwargs", "rule"), [
    ({"names": ["db.forbidden.test"]}, "dns-deny"),
    ({"names": ["spiffe://example.org/web"]}, "profile-names"),
    ({"names": []}, "names"),
    ({"lifetime": dt.timedelta(days=90)}, "lifetime"),
])
def test_policy_and_profile_refusals_say_which_rule(
        csr: MakeCsr, authority: Authority, kwargs: dict[str, object], rule: str) -> None:
    with pytest.raises(RequestRefused) as err:
        authority.issue(csr("ok.internal"), requested_by="mallory", **kwargs)  # type: ignore[arg-type]
    assert err.value.rule == rule
    refusals = [e for e in authority.ledger.audit_events() if e.action is AuditAction.REFUSE]
    assert (refusals[0].actor == "mallory" and rule.split("-")[0] in refusals[0].detail.lower()) \
        or refusals[0].detail.startswith("request refused")


def test_weak_key_and_bad_signature_are_refused(csr: MakeCsr, authority: Authority) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point
    with pytest.raises(RequestRefused, match="1024 bits") as err:
        authority.issue(csr("weak.internal", key=weak))
    assert err.value.rule == "key-strength"
    good = x509.load_pem_x509_csr(csr("sig.internal"))
    from cryptography.hazmat.primitives.serialization import Encoding

    der = bytearray(good.public_bytes(Encoding.DER))
    der[-5] ^= 0x01  # flip a bit inside the signature
    with pytest.raises(RequestRefused, match="signature does not verify"):
        authority.issue(bytes(der))


def test_unknown_profile_is_not_found(csr: MakeCsr, authority: Authority) -> None:
    with pytest.raises(NotFound, match="unknown profile 'nope'"):
        authority.issue(csr("a.internal"), profile="nope")


def test_custom_profile_from_config(csr: MakeCsr, authority: Authority) -> None:
    leaf = x509.load_der_x509_certificate(
        authority.issue(csr("c.internal"), profile="short-web").leaf_der)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=2, minutes=1)


def test_spiffe_svid_follows_the_x509_svid_rules(csr: MakeCsr, authority: Authority) -> None:
    chain = authority.issue(csr("spiffe://example.org/ns/prod/sa/web"), profile="spiffe")
    leaf = x509.load_der_x509_certificate(chain.leaf_der)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://example.org/ns/prod/sa/web"]
    assert san.critical  # subject is empty, so RFC 5280 requires a critical SAN
    assert len(leaf.subject) == 0
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert not ku.value.key_cert_sign
    assert not ku.value.crl_sign
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    with pytest.raises(RequestRefused, match="exactly one URI SAN"):
        authority.issue(csr("spiffe://example.org/a", "spiffe://example.org/b"),
                        profile="spiffe")
    with pytest.raises(RequestRefused) as err:
        authority.issue(csr("spiffe://other.org/a"), profile="spiffe")
    assert err.value.rule == "spiffe-trust-domain"


def test_batch_never_aborts_on_one_bad_request(csr: MakeCsr, authority: Authority) -> None:
    reqs = [IssueRequest(csr=csr("one.internal")),
            IssueRequest(csr=csr("two.forbidden.test")),
            IssueRequest(csr=csr("three.internal"))]
    out = authority.issue_many(reqs)
    assert isinstance(out[1], RequestRefused)
    good = [o for o in out if not isinstance(o, Exception)]
    assert [g.record.names for g in good] == [("one.internal",), ("three.internal",)]
    assert all(authority.ledger.issued(g.serial) for g in good)


def test_revoke_is_idempotent_and_checks_the_issuer(csr: MakeCsr, authority: Authority) -> None:
    chain = authority.issue(csr("r.internal"))
    first = authority.revoke(chain.serial, "keyCompromise", requested_by="bob")
    again = authority.revoke(chain.serial.upper(), RevocationReason.SUPERSEDED,
                             requested_by="eve")
    assert again == first
    assert first.reason is RevocationReason.KEY_COMPROMISE
    with pytest.raises(NotFound):
        authority.revoke("0x1234")


def test_crl_numbers_grow_and_list_revocations_with_reasons(csr: MakeCsr, authority: Authority,
                                                            hierarchy: InitResult) -> None:
    a = authority.issue(csr("a.internal"))
    b = authority.issue(csr("b.internal"))
    authority.revoke(a.serial, "keyCompromise")
    authority.revoke(b.serial, "unspecified")
    first, second = authority.crl(), authority.crl()
    assert second.number == first.number + 1
    crl = x509.load_der_x509_crl(second.der)
    assert crl.is_signature_valid(hierarchy.intermediate.certificate.public_key())  # type: ignore[arg-type]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == second.number
    entry_a = crl.get_revoked_certificate_by_serial_number(int(a.serial, 16))
    entry_b = crl.get_revoked_certificate_by_serial_number(int(b.serial, 16))
    assert entry_a is not None
    assert entry_b is not None
    assert entry_a.extensions.get_extension_for_class(x509.CRLReason).value.reason \
        == x509.ReasonFlags.key_compromise
    assert len(entry_b.extensions) == 0  # unspecified: reasonCode absent (RFC 5280 5.3.1)
    assert crl.next_update_utc is not None
    assert crl.next_update_utc > crl.last_update_utc


def test_every_operation_is_audited(csr: MakeCsr, authority: Authority) -> None:
    chain = authority.issue(csr("audit.internal"), requested_by="carol")
    authority.revoke(chain.serial, "superseded", requested_by="dave")
    authority.crl(requested_by="erin")
    events = authority.ledger.audit_events()
    seen = [(e.action, e.actor, e.serial) for e in events[:3]]
    assert seen == [(AuditAction.CRL, "erin", None),
                    (AuditAction.REVOKE, "dave", chain.serial),
                    (AuditAction.ISSUE, "carol", chain.serial)]
    assert {AuditAction.INIT} <= {e.action for e in events}


def test_bare_public_key_issue_and_issuer_validity_cap(ledger: MemoryLedger,
                                                       authority: Authority) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    chain = authority.issue(public_key=key.public_key(), names=["10.0.0.5"],
                            profile="tls-client")
    leaf = x509.load_der_x509_certificate(chain.leaf_der)
    assert leaf.public_key() == key.public_key()
    assert leaf.not_valid_after_utc <= authority.issuer.certificate.not_valid_after_utc
    assert leaf.signature_hash_algorithm is not None
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
