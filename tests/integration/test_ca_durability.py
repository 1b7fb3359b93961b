"""SIGKILL test: every certificate the CA handed out is in the database after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from certwarden.ca.hierarchy import init_ca
from certwarden.store.ca_ledger import SqlLedger

WORKER = textwrap.dedent("""
    import sys
    from cryptography.hazmat.primitives.asymmetric import ec
    from certwarden.ca import Authority, IssueRequest
    from certwarden.store.ca_ledger import SqlLedger

    authority = Authority.open(SqlLedger.open(sys.argv[1]), passphrase=lambda: b"pw")
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    n = 0
    while True:
        n += 1
        if n % 2:
            chain = authority.issue(public_key=key, names=[f"h{n}.internal"], requested_by="w")
            handed_out = [chain]
        else:  # a group commit of 8
            handed_out = authority.issue_many([
                IssueRequest(public_key=key, names=[f"g{n}-{i}.internal"], requested_by="w")
                for i in range(8)])
        for c in handed_out:  # "the wild": only after issue/issue_many returned
            sys.stdout.write(c.serial + "\\n")
        sys.stdout.flush()
""")


def test_sigkill_never_loses_a_handed_out_certificate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ca.db'}"
    ledger = SqlLedger.open(url)
    init_ca(ledger, name="Crash CA", key_dir=tmp_path / "keys", passphrase=b"pw")
    ledger.close()
    proc = subprocess.Popen([sys.executable, "-c", WORKER, url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while len(seen) < 200 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the worker is issuing as fast as it can
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    # lines the worker wrote before dying count as handed out too (complete lines only)
    seen.extend(line for line in rest.split("\n")[:-1] if line)
    assert len(seen) >= 200, err
    after = SqlLedger.open(url)
    missing = [s for s in seen if after.issued(s) is None]
    assert missing == []
    assert len({i.serial for i, _ in after.list_issued()}) >= len(set(seen))
