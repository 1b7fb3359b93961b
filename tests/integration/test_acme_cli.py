"""``certwarden acme eab-add`` through main(argv), and the key it makes binds an account."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from certwarden.cli import main
from certwarden.store.acme_repo import AcmeRepo


def test_eab_add_stores_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'inv.db'}"
    assert main(["--db", db, "acme", "eab-add", "--kid", "team-a", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kid"] == "team-a"
    assert len(out["hmac_key"]) == 43  # 32 bytes, base64url without padding
    repo = AcmeRepo.open(db)
    try:
        row = repo.eab_key("team-a")
        assert row is not None
        assert row.account_id is None
    finally:
        repo.close()
    assert main(["--db", db, "acme", "eab-add", "--kid", "team-a"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "already exists" in err
    assert main(["--db", db, "acme", "eab-add", "--kid", "has space"]) == 2


def test_serve_acme_settings_travel_through_the_environment() -> None:
    from certwarden.settings import acme_settings_from_env

    settings = acme_settings_from_env({
        "CERTWARDEN_ACME_RESOLVER": "127.0.0.1:5353", "CERTWARDEN_ACME_HTTP_PORT": "5002",
        "CERTWARDEN_ACME_TLS_PORT": "5001", "CERTWARDEN_ACME_ALLOW": "10.1.0.0/16,127.0.0.1",
        "CERTWARDEN_ACME_NONCES": "database", "CERTWARDEN_ACME_EAB": "required"})
    assert settings.validator.resolver == "127.0.0.1:5353"
    assert (settings.validator.http_port, settings.validator.tls_port) == (5002, 5001)
    assert settings.validator.allow == ("10.1.0.0/16", "127.0.0.1")
    assert settings.nonces == "database"
    assert settings.eab_required is True
    default = acme_settings_from_env({})
    assert default.validator.resolver is None
    assert default.eab_required is False


@pytest.mark.parametrize(("args", "needle"), [
    (["--acme-resolver", "dns.example"], "--acme-resolver"),
    (["--acme-allow", "not-a-cidr"], "--acme-allow"),
    (["--acme-http-port", "70000"], "acme-http-port"),
])
def test_serve_refuses_bad_acme_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        args: list[str], needle: str) -> None:
    db = f"sqlite:///{tmp_path / 'inv.db'}"
    assert main(["--db", db, "serve", "--http", "127.0.0.1:1", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert needle in err
