"""ACME in front of the real private CA (``certwarden.ca.Authority`` through
``acme.authority.AuthorityIssuer``): issuance recorded in the CA's ledger, the CA's policy refusing
a name at finalize, revocation reaching the ledger, the CA's profiles in the directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed448, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from acme_client import AcmeClient, AcmeClientError, make_csr
from acme_support import AcmeEnv
from certwarden.acme.authority import AuthorityIssuer, authority_profiles
from certwarden.acme.certificates import ari_cert_id
from certwarden.acme.jws import b64e
from certwarden.ca import Authority, MemoryLedger
from certwarden.ca.hierarchy import init_ca
from certwarden.ca.model import serial_hex
from certwarden.ca.policy import CaConfig

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


async def test_one_key_policy_ed448_is_issued(env: AcmeEnv, client: AcmeClient,
                                              ledger: MemoryLedger) -> None:
    """ACME and the CA share ``ca.csr.check_key``: what the CA signs, ACME accepts (Ed448)."""
    pem, _ = await client.issue(["ed448.internal"], answer=env.publish_http01,
                                csr_key=ed448.Ed448PrivateKey.generate())
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    assert isinstance(leaf.public_key(), ed448.Ed448PublicKey)
    assert ledger.issued(serial_hex(leaf.serial_number)) is not None


async def test_one_key_policy_refuses_before_the_ca(env: AcmeEnv, client: AcmeClient,
                                                    ledger: MemoryLedger) -> None:
    """A key the CA's policy refuses (RSA exponent 3) is badCSR at finalize; the order stays
    ready and nothing reaches the CA's ledger."""
    before = len(list(ledger.list_issued()))
    order = await client.new_order(["weak.internal"])
    authz = await client.get(order.body["authorizations"][0])
    ch = next(c for c in authz.body["challenges"] if c["type"] == "http-01")
    env.publish_http01(ch["token"], client.key_authorization(ch["token"]), "")
    await client.post(ch["url"], {})
    await client.poll(order.location, until=("ready",))
    csr, _ = make_csr(["weak.internal"], rsa.generate_private_key(3, 2048))
    with pytest.raises(AcmeClientError) as err:
        await client.post(order.body["finalize"], {"csr": b64e(csr)})
    assert err.value.type == "badCSR"
    assert "65537" in err.value.problem["detail"]
    assert (await client.get(order.location)).body["status"] == "ready"
    assert len(list(ledger.list_issued())) == before


async def test_ari_id_comes_from_the_ca(env: AcmeEnv, client: AcmeClient) -> None:
    """The CA's ``IssuedChain.ari_id`` is the RFC 9773 identifier of the leaf it signed."""
    pem, _ = await client.issue(["ari.internal"], answer=env.publish_http01)
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    d = await client.load_directory()
    r = await client.http.get(f"{d['renewalInfo']}/{ari_cert_id(leaf)}")
    assert r.status_code == 200
    assert "suggestedWindow" in r.json()
