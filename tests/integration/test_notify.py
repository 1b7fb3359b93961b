"""Notifications reach a real SMTP server and a real webhook receiver.

aiosmtpd on 127.0.0.1 requires STARTTLS (with a certificate from a test CA the client is told
to trust) and AUTH before it accepts mail; the webhook is a loopback ``http.server`` that
records each JSON POST (and can refuse the first ones, to show the retries). Every event kind
is triggered through the CLI, each is sent once per certificate and threshold — across
separate processes — and routed to the owner's contact when the location has one.
"""

from __future__ import annotations

import email.policy
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from certwarden.cli import main
from certwarden.x509 import create as mk
from tests.lifecycle_servers import free_port

USER, PASSWORD = "certwarden", "s3cret-smtp-password"


@dataclass
class Mailbox:
    messages: list[dict[str, Any]] = field(default_factory=list)
    auth_ok: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = message_from_bytes(envelope.content, policy=email.policy.default)
        body = bytes(msg.get_payload(decode=True) or b"").decode().replace("\r\n", "\n")
        subject = " ".join(str(msg["Subject"]).split())  # unfolded
        self.messages.append({"to": list(envelope.rcpt_tos), "subject": subject,
                              "tls": session.ssl is not None,
                              "payload": json.loads(body.split("\n\n", 1)[1])})
        return "250 OK"

    def authenticate(self, server: SMTP, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and data.login.decode() == USER and \
                data.password.decode() == PASSWORD:
            self.auth_ok.append(mechanism)
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


class _TLSController(Controller):
    def __init__(self, handler: Mailbox, ctx: ssl.SSLContext) -> None:
        # A port of our own choosing: the controller connects to it to see it is up.
        super().__init__(handler, hostname="127.0.0.1", port=free_port())
        self.ctx = ctx

    def factory(self) -> SMTP:
        return SMTP(self.handler, tls_context=self.ctx, require_starttls=True,
                    auth_required=True, auth_require_tls=True,
                    authenticator=self.handler.authenticate, hostname="localhost")


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Mailbox, int, Path]]:
    ca = mk.dev_ca("SMTP test CA")
    leaf = mk.leaf(ca, ["localhost", "127.0.0.1"])
    (tmp_path / "smtp-ca.pem").write_text(ca.certificate.pem())
    (tmp_path / "smtp.pem").write_text(leaf.certificate.pem())
    mk.write_private(tmp_path / "smtp-key.pem", leaf.key_pem())
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "smtp.pem", tmp_path / "smtp-key.pem")
    box = Mailbox()
    ctl = _TLSController(box, ctx)
    ctl.start()
    try:
        yield box, int(ctl.port), tmp_path / "smtp-ca.pem"
    finally:
        ctl.stop()


@dataclass
class Hooks:
    posts: list[dict[str, Any]] = field(default_factory=list)
    refuse: int = 0  # answer 500 to this many POSTs first


@pytest.fixture
def webhook() -> Iterator[tuple[Hooks, str]]:
    hooks = Hooks()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                if hooks.refuse > 0:
                    hooks.refuse -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                assert self.headers["Content-Type"] == "application/json"
                hooks.posts.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hooks, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CERTWARDEN_DATABASE_URL", f"sqlite:///{tmp_path / 'inv.db'}")
    monkeypatch.setenv("CERTWARDEN_CA_PASSPHRASE", "notify-test-passphrase")
    monkeypatch.setenv("CERTWARDEN_CA_DIR", str(tmp_path / "ca"))
    (tmp_path / "ca.yaml").write_text("profiles:\n  short:\n    lifetime_days: 0.0028\n")
    assert main(["ca", "init", "--name", "Notify CA", "--config", str(tmp_path / "ca.yaml")]) == 0
    (tmp_path / "smtp-password").write_text(PASSWORD + "\n")
    return tmp_path


def _config(tmp: Path, port: int, cafile: Path, url: str, *, flag: Path,
            renew_before: str = "290s") -> str:
    path = tmp / f"lc-{renew_before}.yaml"
    path.write_text(f"""\
renewal:
  jitter: 0
  renew_before: {renew_before}
  retry: {{base: 1s, max: 1s, attempts: 1}}
deploy:
  - location: "file://{tmp}/etc/*"
    reload: "test -e {flag}"
schedules:
  - {{name: sweep, job: files, every: 1s, paths: ["{tmp}/found"]}}
  - {{job: renew, every: 1s}}
  - {{job: notify, every: 1s}}
notifications:
  renewal_done: true
  thresholds: [30, 7]
  retry: {{base: 1s, max: 1s}}
  webhooks: ["{url}"]
  email:
    host: 127.0.0.1
    port: {port}
    starttls: true
    cafile: "{cafile}"
    username: {USER}
    password_file: "{tmp}/smtp-password"
    from: certwarden@test.example
    to: [ops@test.example]
""")
    return str(path)


def _self_signed(directory: Path, name: str, days: int = 365) -> None:
    directory.mkdir(exist_ok=True)
    ss = mk.self_signed([name], days=days)
    (directory / f"{name}.pem").write_text(ss.certificate.pem())
    mk.write_private(directory / f"{name}-key.pem", ss.key_pem())


def _events(box: Mailbox, hooks: Hooks) -> tuple[list[str], list[str]]:
    return ([m["payload"]["event"] for m in box.messages], [p["event"] for p in hooks.posts])


def test_every_event_reaches_smtp_and_the_webhook_once(
        estate: Path, smtp: tuple[Mailbox, int, Path], webhook: tuple[Hooks, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    box, port, cafile = smtp
    hooks, url = webhook
    flag = estate / "reload-works"
    flag.touch()
    config = _config(estate, port, cafile, url, flag=flag)
    _self_signed(estate / "etc", "web.test")
    assert main(["discover", "files", str(estate / "etc")]) == 0

    # 1. renewal done (opt-in): replace, then the agent renews (due at once: 290 s before).
    assert main(["replace", "--apply", "--profile", "short", "--config", config]) == 0
    assert main(["agent", "--once", "--config", config]) == 0
    capsys.readouterr()
    assert _events(box, hooks) == (["renewal-done"], ["renewal-done"])

    # 2. a deploy rolled back, and (attempts: 1) the renewal failed after its retries.
    flag.unlink()
    time.sleep(1.1)  # the renew and notify jobs run every second
    assert main(["agent", "--once", "--config", config]) == 0
    capsys.readouterr()
    mails, posts = _events(box, hooks)
    assert mails[1:] == posts[1:] == ["deploy-rolled-back", "renewal-failed"]

    # 3. a scheduled discovery finds an ownerless self-signed certificate, expiring in 5 days:
    #    ownerless-self-signed, and expiring at the 7-day threshold (not 30: the tightest).
    _self_signed(estate / "found", "lost.test", days=5)
    time.sleep(1.1)
    assert main(["agent", "--once", "--config", config]) == 0
    capsys.readouterr()
    mails, posts = _events(box, hooks)
    assert sorted(mails[3:]) == sorted(posts[3:]) == ["expiring", "ownerless-self-signed"]
    expiring = next(m for m in box.messages if m["payload"]["event"] == "expiring")
    assert expiring["payload"]["threshold"] == "7d"
    assert expiring["to"] == ["ops@test.example"]
    assert expiring["subject"].startswith("certwarden: expires within 7d, not renewable: "
                                          "lost.test at file://")
    assert next(p for p in hooks.posts if p["event"] == "expiring")["text"] == \
        expiring["subject"]

    # Each once: more rounds (new processes) send nothing new.
    time.sleep(1.1)
    assert main(["agent", "--once", "--config", config]) == 0
    assert len(box.messages) == len(hooks.posts) == 5
    # Every mail came over STARTTLS after AUTH.
    assert all(m["tls"] for m in box.messages)
    assert len(box.auth_ok) == len(box.messages)


def test_routed_to_the_owner_and_retried_when_delivery_fails(
        estate: Path, smtp: tuple[Mailbox, int, Path], webhook: tuple[Hooks, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    box, port, cafile = smtp
    hooks, url = webhook
    flag = estate / "reload-works"
    flag.touch()
    config = _config(estate, port, cafile, url, flag=flag)
    _self_signed(estate / "etc", "pay.test")
    assert main(["discover", "files", str(estate / "etc")]) == 0
    assert main(["inventory", "owner", f"file://{estate}/etc/*", "payments",
                 "--contact", f"payments@test.example {url}?team=payments"]) == 0
    assert main(["replace", "--apply", "--profile", "short", "--config", config]) == 0
    # Renewed once by the agent, then not due again (100 s before the end) for this test.
    config = _config(estate, port, cafile, url, flag=flag, renew_before="100s")
    hooks.refuse = 1  # the first POST is answered 500
    assert main(["agent", "--once", "--config", config]) == 0
    capsys.readouterr()
    # The owner's contacts only, not the defaults (ops@, the bare webhook URL).
    assert [m["to"] for m in box.messages] == [["payments@test.example"]]
    assert hooks.posts == []
    assert main(["managed", "list", "--json", "--config", config]) == 0
    [m] = json.loads(capsys.readouterr().out)
    failing = [n for n in m["notifications"] if n["channel"] == "webhook"]
    assert [(n["status"], n["last_error"]) for n in failing] == [
        ("failing", f"webhook {url}?team=payments: HTTP 500")]
    time.sleep(1.1)  # the backoff: 1 s
    assert main(["agent", "--once", "--config", config]) == 0
    capsys.readouterr()
    [post] = hooks.posts
    assert (post["event"], post["owner"]) == ("renewal-done", "payments")
    assert main(["managed", "list", "--json", "--config", config]) == 0
    [m] = json.loads(capsys.readouterr().out)
    assert {n["status"] for n in m["notifications"]} == {"sent"}
