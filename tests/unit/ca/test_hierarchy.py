"""ca init for every CA key algorithm; name constraints; the offline root."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from certwarden.ca import Authority, CertStatus, MemoryLedger, SignerError
from certwarden.ca.errors import RequestRefused
from certwarden.ca.hierarchy import init_ca
from certwarden.ca.policy import CaConfig, NamePolicy
from certwarden.ca.publish import Publisher
from certwarden.x509.keys import KeyAlgorithm

MakeCsr = Callable[..., bytes]


@pytest.mark.parametrize("alg", [KeyAlgorithm.EC_P384, KeyAlgorithm.RSA_3072,
                                 KeyAlgorithm.ED25519])
def test_every_ca_key_algorithm_issues_crls_and_ocsp(tmp_path: Path, csr: MakeCsr,
                                                      alg: KeyAlgorithm) -> None:
    ledger = MemoryLedger()
    result = init_ca(ledger, name=f"Alg {alg}", key_dir=tmp_path, passphrase=b"pw",
                     algorithm=alg)
    root, inter = result.root.certificate, result.intermediate.certificate
    inter.verify_directly_issued_by(root)
    authority = Authority.open(ledger, passphrase=lambda: b"pw")
    chain = authority.issue(csr("alg.internal"))
    leaf = x509.load_der_x509_certificate(chain.leaf_der)
    leaf.verify_directly_issued_by(inter)
    crl = x509.load_der_x509_crl(authority.crl().der)
    assert crl.is_signature_valid(inter.public_key())  # type: ignore[arg-type]
    publisher = Publisher(ledger, {authority.issuer.name: authority.signer})
    req = (ocsp.OCSPRequestBuilder().add_certificate(leaf, inter, hashes.SHA256()).build()
           .public_bytes(serialization.Encoding.DER))
    answer = publisher.responder.respond(req)
    assert answer.status is CertStatus.GOOD


def test_name_constraints_on_the_intermediate_and_in_policy(tmp_path: Path,
                                                            csr: MakeCsr) -> None:
    ledger = MemoryLedger()
    cfg = CaConfig(policy=NamePolicy(allowed_dns=("corp.internal",)))
    result = init_ca(ledger, name="Constrained", key_dir=tmp_path, passphrase=b"pw",
                     permitted_dns=("corp.internal",), config=cfg)
    nc = result.intermediate.certificate.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical
    assert nc.value.permitted_subtrees == [x509.DNSName("corp.internal")]
    authority = Authority.open(ledger, passphrase=lambda: b"pw")
    authority.issue(csr("app.corp.internal"))
    with pytest.raises(RequestRefused, match="outside the allowed DNS suffixes"):
        authority.issue(csr("app.other.internal"))


def test_root_key_can_go_offline(tmp_path: Path, csr: MakeCsr) -> None:
    ledger = MemoryLedger()
    result = init_ca(ledger, name="Offline Root", key_dir=tmp_path, passphrase=b"pw")
    (tmp_path / "offline-root-root.key.pem").unlink()  # moved to a safe
    authority = Authority.open(ledger, passphrase=lambda: b"pw")
    authority.issue(csr("still.internal"))
    publisher = Publisher.open(ledger, passphrase=lambda: b"pw")
    assert publisher.crl(result.root.name).number == 1  # the stored root CRL from init
    with pytest.raises(SignerError, match="missing"):
        Authority.open(ledger, issuer=result.root.name, passphrase=lambda: b"pw")
