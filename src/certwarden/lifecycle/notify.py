"""Notifications: events routed to their owners' contacts, recorded once, delivered with
retries.

``Notifier.__call__`` (an ``EventSink``) records one delivery per recipient in the store —
once per event kind, subject and threshold, whatever restarts happen (a unique key) —
and ``Notifier.deliver`` sends what is pending: a webhook as a JSON POST whose ``text``
field Slack and Mattermost show as is, an email over SMTP with STARTTLS and AUTH. A delivery
that fails is retried with exponential backoff; its state is in ``managed list``.

Routing: the owner of the location (the policy's owners first, then ``inventory owner``),
its contact there and the contacts the config lists for that team; with no owner, or no
contact, the config's default webhooks and ``email.to``.
"""

from __future__ import annotations

import datetime as dt
import json
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from certwarden.lifecycle.config import NotifyConfig
from certwarden.lifecycle.events import Event, EventKind
from certwarden.store.managed import ManagedStore
from certwarden.store.managed_records import Delivery

DELIVERY_LEASE = dt.timedelta(minutes=5)
WEBHOOK, EMAIL = "webhook", "email"

OwnerOf = Callable[[str], tuple[str, str | None] | None]  # location -> (team, contact)


def _contacts(text: str | None) -> list[tuple[str, str]]:
    out = []
    for part in (text or "").replace(",", " ").split():
        if part.startswith(("http://", "https://")):
            out.append((WEBHOOK, part))
        elif "@" in part:
            out.append((EMAIL, part.removeprefix("mailto:")))
    return out


@dataclass(slots=True)
class Notifier:
    store: ManagedStore
    cfg: NotifyConfig
    owner_of: OwnerOf = field(default=lambda _uri: None)
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def recipients(self, event: Event) -> list[tuple[str, str]]:
        found = self.owner_of(event.location)
        team = event.owner or (found[0] if found else None)
        out = _contacts(found[1] if found else None)
        for contact in self.cfg.owners.get(team or "", ()):
            out += _contacts(contact)
        if not out:
            out = [(WEBHOOK, u) for u in self.cfg.webhooks]
            if self.cfg.email is not None:
                out += [(EMAIL, a) for a in self.cfg.email.to]
        return list(dict.fromkeys(out))

    def __call__(self, event: Event) -> None:
        if event.kind is EventKind.RENEWAL_DONE and not self.cfg.renewal_done:
            return
        found = self.owner_of(event.location)
        payload = {"text": event.text(), "event": str(event.kind), "subject": event.subject,
                   "location": event.location, "names": list(event.names),
                   "reason": event.reason, "threshold": event.threshold,
                   "owner": event.owner or (found[0] if found else None),
                   "managed_id": event.managed_id}
        for channel, target in self.recipients(event):
            self.store.notify_once(event=str(event.kind), subject=event.subject,
                                   threshold=event.threshold, channel=channel, target=target,
                                   managed_id=event.managed_id, text=event.text(),
                                   payload=payload)

    def deliver(self, *, owner: str) -> list[tuple[Delivery, str | None]]:
        """Send every pending delivery; returns each with its error (None: sent)."""
        done: list[tuple[Delivery, str | None]] = []
        for d in self.store.claim_deliveries(owner=owner, lease=DELIVERY_LEASE,
                                             now=self.clock()):
            try:
                if d.channel == WEBHOOK:
                    post_webhook(d.target, d.payload, timeout=self.cfg.timeout)
                else:
                    send_email(self.cfg, d.target, d.text, d.payload)
            except DeliveryError as exc:
                wait = min(self.cfg.retry_max, self.cfg.retry_base * (2 ** d.attempts))
                self.store.delivery_failed(d.id, reason=str(exc),
                                           next_attempt_at=self.clock() + wait)
                done.append((d, str(exc)))
                continue
            self.store.delivered(d.id)
            done.append((d, None))
        return done


class DeliveryError(Exception):
    """One delivery failed (the reason is one line, without secrets)."""


def post_webhook(url: str, payload: Mapping[str, object], *, timeout: float) -> None:
    import httpx

    try:
        resp = httpx.post(url, content=json.dumps(payload, default=str),
                          headers={"Content-Type": "application/json"}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"webhook {url}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:160]}") from None
    if not 200 <= resp.status_code < 300:
        raise DeliveryError(f"webhook {url}: HTTP {resp.status_code}")


def send_email(cfg: NotifyConfig, to: str, subject: str,
               payload: Mapping[str, object]) -> None:
    e = cfg.email
    if e is None:
        raise DeliveryError(f"email to {to}: no notifications.email in the config")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = e.sender, to, subject[:200]
    msg.set_content(subject + "\n\n" + json.dumps(payload, indent=2, default=str) + "\n")
    try:
        with smtplib.SMTP(e.host, e.port, timeout=e.timeout) as smtp:
            smtp.ehlo()
            if e.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=e.cafile))
                smtp.ehlo()
            if e.username:
                smtp.login(e.username, _password(e.password_file))
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"email to {to} via {e.host}:{e.port}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:160]}") from None


def _password(path: str | None) -> str:
    if not path:
        raise DeliveryError("email: username given but no password_file")
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise DeliveryError(f"email: cannot read password_file {path}: "
                            f"{exc.strerror or exc}") from None
