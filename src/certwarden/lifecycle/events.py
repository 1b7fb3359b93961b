"""What the lifecycle tells people about: one record per event, one closed vocabulary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    RENEWAL_FAILED = "renewal-failed"  # every retry failed
    RENEWAL_DONE = "renewal-done"  # opt-in (notifications.renewal_done)
    EXPIRING = "expiring"  # a certificate we cannot renew expires within a threshold
    OWNERLESS_SELF_SIGNED = "ownerless-self-signed"  # a scheduled discovery found one
    DEPLOY_ROLLED_BACK = "deploy-rolled-back"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: EventKind
    subject: str  # what it is about, for "once": a certificate SHA-256, or managed id:gen
    location: str
    reason: str
    names: tuple[str, ...] = ()
    threshold: str = ""  # EXPIRING: "30d", ...; once per subject AND threshold
    managed_id: int | None = None
    owner: str | None = None  # the team, when known already

    def text(self) -> str:
        """The one line people read (Slack/Mattermost ``text``, the mail's subject)."""
        what = ", ".join(self.names[:3]) or self.subject[:16]
        head = {EventKind.RENEWAL_FAILED: "renewal FAILED",
                EventKind.RENEWAL_DONE: "renewed",
                EventKind.EXPIRING: f"expires within {self.threshold}, not renewable",
                EventKind.OWNERLESS_SELF_SIGNED: "self-signed certificate with no owner",
                EventKind.DEPLOY_ROLLED_BACK: "deploy ROLLED BACK"}[self.kind]
        return f"certwarden: {head}: {what} at {self.location}: {self.reason}"


EventSink = Callable[[Event], None]


def discard(_event: Event) -> None:
    """An ``EventSink`` for callers that notify nobody (a dry run, a plain ``replace``)."""
