"""Managed-certificate tables (migration ``managed_0001``). Rows never leave ``certwarden.store``.

A managed certificate is one that certwarden issued and deployed and keeps renewing: its
names, CA profile, key policy, deploy recipe (JSON, the lifecycle package's format), the
current serial and validity, when it renews next, and a lease that makes a renewal
exactly-once across processes. Its locations, its attempts, the notifications sent about it
and the agent's job schedule live in tables of their own.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from certwarden.store.db import Base


class ManagedRow(Base):
    __tablename__ = "managed_certs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    names: Mapped[str] = mapped_column(Text)  # JSON list
    profile: Mapped[str] = mapped_column(String(64))
    key_policy: Mapped[str] = mapped_column(String(16))
    renew_before_s: Mapped[int | None]  # seconds; None: 1/3 of the lifetime
    recipe: Mapped[str] = mapped_column(Text)  # JSON object
    owner: Mapped[str | None] = mapped_column(Text)
    serial: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[dt.datetime]
    not_after: Mapped[dt.datetime]
    renew_at: Mapped[dt.datetime]
    next_attempt_at: Mapped[dt.datetime | None]  # set while retrying (backoff)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive
    last_error: Mapped[str | None] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer, default=0)  # +1 per renewal done
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class ManagedLocationRow(Base):
    __tablename__ = "managed_locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    managed_id: Mapped[int] = mapped_column(ForeignKey("managed_certs.id"), index=True)
    uri_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # one owner per location
    uri: Mapped[str] = mapped_column(Text)


class AttemptRow(Base):
    __tablename__ = "managed_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    managed_id: Mapped[int] = mapped_column(ForeignKey("managed_certs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # replace | renew
    outcome: Mapped[str] = mapped_column(String(16))
    serial: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime]


class NotificationRow(Base):
    __tablename__ = "managed_notifications"
    __table_args__ = (UniqueConstraint("event", "subject", "threshold", "channel", "target",
                                       name="uq_managed_notifications_once"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))  # certificate SHA-256 or managed:ID:GEN
    threshold: Mapped[str] = mapped_column(String(32), default="")
    channel: Mapped[str] = mapped_column(String(16))  # webhook | email
    target: Mapped[str] = mapped_column(String(400))  # URL or address
    managed_id: Mapped[int | None] = mapped_column(ForeignKey("managed_certs.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)  # JSON object
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failing
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None]
    lease_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]


class JobRow(Base):
    __tablename__ = "managed_jobs"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_run_at: Mapped[dt.datetime | None]
    next_run_at: Mapped[dt.datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[dt.datetime | None]
