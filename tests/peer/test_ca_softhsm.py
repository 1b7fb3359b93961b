"""The same real-peer checks with the intermediate's key inside SoftHSM2 (PKCS#11).

The token lives in a temp dir (``SOFTHSM2_CONF``); the key is generated in the token and the
certificates, CRLs and OCSP answers are signed there (hash on the host, raw r||s -> DER).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ca_peer_support import (
    base_env,
    cli,
    require_tool,
    run,
    serving,
    split_chain,
    tls_roundtrip,
)

pytestmark = pytest.mark.peer("softhsm")
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4321"


@pytest.fixture
def hsm_env(tmp_path: Path, openssl: str) -> dict[str, str]:
    util = require_tool("softhsm2-util")
    require_tool("libsofthsm2.so", path=MODULE)
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    env = base_env(tmp_path)
    env.update({"SOFTHSM2_CONF": str(conf), "CERTWARDEN_PKCS11_PIN": PIN})
    r = run(util, "--init-token", "--free", "--label", "ca-token", "--pin", PIN,
            "--so-pin", "87654321", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    return env


def _init(env: dict[str, str], d: Path, alg: str = "ec-p256") -> None:
    cli(env, "ca", "init", "--name", "HSM CA", "--key-algorithm", alg, "--key",
        f"pkcs11:token=ca-token;object=issuing?module-path={MODULE}", cwd=d)
    cli(env, "ca", "root", "--out", "root.pem", cwd=d)


CHECK_KEY = """
import sys, pkcs11
from pkcs11 import Attribute, ObjectClass
lib = pkcs11.lib(sys.argv[1])
with lib.get_token(token_label="ca-token").open(user_pin=sys.argv[2]) as s:
    k = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label="issuing")
    print("sensitive", bool(k[Attribute.SENSITIVE]), "extractable", bool(k[Attribute.EXTRACTABLE]))
    try:
        k[Attribute.VALUE]
        print("value readable")
    except pkcs11.exceptions.PKCS11Error as exc:
        print("value refused", type(exc).__name__)
"""


def test_hsm_chain_verifies_and_crl_signed_in_token_rejects_revoked(
        hsm_env: dict[str, str], tmp_path: Path, openssl: str) -> None:
    d = tmp_path
    _init(hsm_env, d)
    assert not (d / "data" / "certwarden" / "ca" / "hsm-ca.key.pem").exists()
    key_state = run(sys.executable, "-c", CHECK_KEY, MODULE, PIN, cwd=d, env=hsm_env)
    assert key_state.returncode == 0, key_state.stderr
    assert "sensitive True extractable False" in key_state.stdout
    assert "value refused" in key_state.stdout
    for name in ("a.internal", "b.internal"):
        cli(hsm_env, "ca", "issue", "--name", name, "--out", f"{name}.pem", cwd=d)
    a, inter = split_chain(d / "a.internal.pem")
    b, _ = split_chain(d / "b.internal.pem")
    ok = run(openssl, "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", "root.pem",
             "-untrusted", str(inter), str(a), cwd=d)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    cli(hsm_env, "ca", "revoke", "a.internal.pem", "--reason", "keyCompromise", cwd=d)
    cli(hsm_env, "ca", "crl", "--pem", "--out", "hsm.crl.pem", cwd=d)
    args = ["verify", "-crl_check", "-CRLfile", "hsm.crl.pem", "-CAfile", "root.pem",
            "-untrusted", str(inter)]
    revoked = run(openssl, *args, str(a), cwd=d)
    assert "certificate revoked" in revoked.stdout + revoked.stderr
    assert run(openssl, *args, str(b), cwd=d).returncode == 0


@pytest.mark.parametrize("alg", ["ec-p384", "rsa-3072"])
def test_other_token_key_algorithms(hsm_env: dict[str, str], tmp_path: Path, openssl: str,
                                    alg: str) -> None:
    d = tmp_path
    _init(hsm_env, d, alg)
    cli(hsm_env, "ca", "issue", "--name", "x.internal", "--out", "x.pem", cwd=d)
    leaf, inter = split_chain(d / "x.pem")
    ok = run(openssl, "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", "root.pem",
             "-untrusted", str(inter), str(leaf), cwd=d)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_hsm_ocsp_and_tls(hsm_env: dict[str, str], tmp_path: Path, openssl: str) -> None:
    d = tmp_path
    _init(hsm_env, d)
    cli(hsm_env, "ca", "issue", "--name", "localhost", "--out", "good.pem", cwd=d)
    cli(hsm_env, "ca", "issue", "--name", "bad.internal", "--out", "bad.pem", cwd=d)
    good, inter = split_chain(d / "good.pem")
    bad, _ = split_chain(d / "bad.pem")
    cli(hsm_env, "ca", "revoke", "bad.pem", "--reason", "affiliationChanged", cwd=d)
    with serving(hsm_env, d) as base:
        def ask(*target: str) -> str:
            r = run(openssl, "ocsp", "-issuer", str(inter), *target, "-url", f"{base}/ocsp",
                    "-CAfile", "root.pem", "-resp_text", cwd=d)
            assert r.returncode == 0, r.stderr
            assert "Response verify OK" in r.stderr + r.stdout
            return r.stdout
        assert "good.leaf.pem: good" in ask("-cert", str(good))
        out = ask("-cert", str(bad))
        assert "bad.leaf.pem: revoked" in out
        assert "Reason: affiliationChanged" in out
        assert "0x99: unknown" in ask("-serial", "0x99")
    assert tls_roundtrip(d / "good.pem", d / "good.key", d / "root.pem", "localhost") \
        == "hello from the issued cert"
