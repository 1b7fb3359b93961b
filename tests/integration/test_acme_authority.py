"""ACME in front of the real private CA (``certwarden.ca.Authority`` through
``web.acme.AuthorityIssuer``): issuance recorded in the CA's ledger, the CA's policy refusing
a name at finalize, revocation reaching the ledger, the CA's profiles in the directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from acme_client import AcmeClient, AcmeClientError
from acme_support import AcmeEnv
from certwarden.acme.jws import b64e
from certwarden.ca import Authority, MemoryLedger
from certwarden.ca.hierarchy import init_ca
from certwarden.ca.model import serial_hex
from certwarden.ca.policy import CaConfig
from certwarden.web.acme import AuthorityIssuer, authority_profiles

pytestmark = pytest.mark.anyio
PASSPHRASE = b"acme-integration"


@pytest.fixture
def ledger(tmp_path: Path) -> MemoryLedger:
    led = MemoryLedger()
    cfg = CaConfig.from_mapping({
        "base_url": "http://ca.test:8080",
        "policy": {"denied_dns": ["forbidden.internal"]},
        "profiles": {"short-web": {"extended_key_usage": ["serverAuth"], "lifetime_days": 2,
                                   "max_lifetime_days": 3}}})
    init_ca(led, name="ACME Test CA", key_dir=tmp_path / "keys", passphrase=PASSPHRASE,
            config=cfg)
    return led


@pytest.fixture
def env(tmp_path: Path, ledger: MemoryLedger) -> Iterator[AcmeEnv]:
    authority = Authority.open(ledger, passphrase=lambda: PASSPHRASE)
    issuer = AuthorityIssuer(authority, profiles=authority_profiles(authority))
    with AcmeEnv(db_url=f"sqlite:///{tmp_path / 'acme.db'}", issuer=issuer).running() as e:
        yield e


@pytest.fixture
async def client(env: AcmeEnv) -> AsyncIterator[AcmeClient]:
    async with env.http_client() as http:
        c = env.acme_client(http)
        await c.register()
        yield c


async def test_issue_revoke_through_the_real_ca(env: AcmeEnv, client: AcmeClient,
                                                ledger: MemoryLedger) -> None:
    d = await client.load_directory()
    assert {"tls-server", "tls-client", "spiffe", "short-web"} <= set(d["meta"]["profiles"])
    pem, _ = await client.issue(["real.internal"], answer=env.publish_http01)
    chain = x509.load_pem_x509_certificates(pem.encode())
    assert len(chain) == 2
    chain[0].verify_directly_issued_by(chain[1])
    serial = serial_hex(chain[0].serial_number)
    record = ledger.issued(serial)
    assert record is not None
    assert record.requested_by == "acme"
    der = chain[0].public_bytes(Encoding.DER)
    await client.post(d["revokeCert"], {"certificate": b64e(der), "reason": 1})
    revocation = ledger.revocation(serial)
    assert revocation is not None
    assert revocation.reason.value == "keyCompromise"


async def test_custom_profile_lifetime(env: AcmeEnv, client: AcmeClient) -> None:
    pem, order = await client.issue(["short.internal"], answer=env.publish_http01,
                                    profile="short-web")
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days <= 2
    assert order.body["profile"] == "short-web"


async def test_ca_policy_refusal_is_bad_csr_and_fails_the_order(env: AcmeEnv,
                                                                client: AcmeClient) -> None:
    with pytest.raises(AcmeClientError) as err:
        await client.issue(["x.forbidden.internal"], answer=env.publish_http01)
    assert err.value.type == "badCSR"
    assert "refused" in err.value.problem["detail"]
