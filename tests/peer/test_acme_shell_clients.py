"""dehydrated and uacme (Debian's packages) issue over http-01 against our ACME server.

uacme has no option for a CA bundle: it runs in a private mount namespace where our root is
bind-mounted over the system bundle, so it trusts our root and nothing else.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from acme_support import LiveAcme, webroot_server
from conftest import require_tool

pytestmark = pytest.mark.slow


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveAcme]:
    with LiveAcme(tmp_path).running() as acme:
        yield acme


def dns_names(cert: x509.Certificate) -> list[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(sans.get_values_for_type(x509.DNSName))


@pytest.mark.peer("dehydrated")
def test_dehydrated_http01(live: LiveAcme, tmp_path: Path) -> None:
    dehydrated = require_tool("dehydrated")
    base = tmp_path / "dehydrated"
    base.mkdir()
    with webroot_server(tmp_path / "www", live.http_port) as wellknown:
        config = base / "config"
        config.write_text(f'''CA="{live.directory}"
CHALLENGETYPE="http-01"
WELLKNOWN="{wellknown}"
BASEDIR="{base}"
CONTACT_EMAIL="ops@example.test"
KEY_ALGO="prime256v1"
CURL_OPTS="--cacert {live.root_pem}"
''')
        env = live.tool_env()
        for args in (["--register", "--accept-terms"],
                     ["--cron", "--domain", "dehy.internal", "--domain", "www.dehy.internal"]):
            proc = subprocess.run([dehydrated, "--config", str(config), *args], env=env,
                                  capture_output=True, text=True, timeout=120, check=False)
            assert proc.returncode == 0, f"dehydrated {args[0]}:\n{proc.stdout}\n{proc.stderr}"
    chain = x509.load_pem_x509_certificates(
        (base / "certs" / "dehy.internal" / "fullchain.pem").read_bytes())
    chain[0].verify_directly_issued_by(live.ca.intermediate)
    assert dns_names(chain[0]) == ["dehy.internal", "www.dehy.internal"]


UACME_HOOK = """#!/bin/sh
# uacme hook: $1=begin|done|failed $2=challenge type $3=identifier $4=token $5=key auth
[ "$2" = "http-01" ] || exit 1
case "$1" in
  begin) printf '%s' "$5" > "{dir}/$4" ;;
  done|failed) rm -f "{dir}/$4" ;;
esac
"""


@pytest.mark.peer("uacme")
def test_uacme_http01(live: LiveAcme, tmp_path: Path) -> None:
    uacme = require_tool("uacme")
    unshare = require_tool("unshare")
    require_tool("mount")  # gives uacme our root as its system bundle
    confdir = tmp_path / "uacme"
    with webroot_server(tmp_path / "www", live.http_port) as wellknown:
        hook = tmp_path / "uacme-hook.sh"
        hook.write_text(UACME_HOOK.replace("{dir}", str(wellknown)))
        hook.chmod(0o755)
        script = (f"mount --bind {live.root_pem} /etc/ssl/certs/ca-certificates.crt && "
                  f"{uacme} -v -y -a {live.directory} -c {confdir} -t EC new ops@example.test && "
                  f"{uacme} -v -a {live.directory} -c {confdir} -t EC -h {hook} "
                  "issue ua.internal www.ua.internal")
        proc = subprocess.run([unshare, "--mount", "--propagation", "private", "sh", "-c",
                               script], env=live.tool_env(), capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, f"uacme:\n{proc.stdout}\n{proc.stderr}"
    chain = x509.load_pem_x509_certificates((confdir / "ua.internal" / "cert.pem").read_bytes())
    chain[0].verify_directly_issued_by(live.ca.intermediate)
    assert dns_names(chain[0]) == ["ua.internal", "www.ua.internal"]
