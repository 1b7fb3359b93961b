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
        assert row["account_id"] is None
    finally:
        repo.close()
    assert main(["--db", db, "acme", "eab-add", "--kid", "team-a"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "already exists" in err
    assert main(["--db", db, "acme", "eab-add", "--kid", "has space"]) == 2
