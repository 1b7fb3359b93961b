"""A CA in memory (MemoryLedger, key files in tmp_path) for the unit tests of certwarden.ca."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certwarden.ca import Authority, MemoryLedger
from certwarden.ca.hierarchy import InitResult, init_ca
from certwarden.ca.policy import CaConfig

PASSPHRASE = b"unit-test-passphrase"


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger()


@pytest.fixture
def hierarchy(ledger: MemoryLedger, tmp_path: Path) -> InitResult:
    cfg = CaConfig.from_mapping({
        "base_url": "http://ca.test:8080",
        "policy": {"denied_dns": ["forbidden.test"], "spiffe_trust_domains": ["example.org"]},
        "profiles": {"short-web": {"extended_key_usage": ["serverAuth"], "lifetime_days": 2,
                                   "max_lifetime_days": 3}},
    })
    return init_ca(ledger, name="Unit CA", key_dir=tmp_path / "keys", passphrase=PASSPHRASE,
                   config=cfg)


@pytest.fixture
def authority(ledger: MemoryLedger, hierarchy: InitResult) -> Authority:
    return Authority.open(ledger, passphrase=lambda: PASSPHRASE)


def make_csr(*names: str, key: object | None = None, cn: str | None = None) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    k = key or ec.generate_private_key(ec.SECP256R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or (names[0] if names else "x"))]))
    if names:
        gns: list[x509.GeneralName] = []
        for n in names:
            if n.startswith("spiffe://"):
                gns.append(x509.UniformResourceIdentifier(n))
            else:
                gns.append(x509.DNSName(n))
        b = b.add_extension(x509.SubjectAlternativeName(gns), critical=False)
    return b.sign(k, hashes.SHA256()).public_bytes(Encoding.PEM)  # type: ignore[arg-type]


@pytest.fixture
def csr() -> object:
    """``csr("a.example", ..., key=..., cn=...)`` -> PEM CSR bytes."""
    return make_csr
