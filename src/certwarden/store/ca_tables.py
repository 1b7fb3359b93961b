"""Tables of the private CA (migration ``ca_0001``). Serials are unique by constraint."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from certwarden.store.db import Base


class CaIssuerRow(Base):
    __tablename__ = "ca_issuers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    key_ref: Mapped[str] = mapped_column(Text)
    parent: Mapped[str | None] = mapped_column(String(64), ForeignKey("ca_issuers.name"))
    created_at: Mapped[dt.datetime]


class CaIssuedRow(Base):
    __tablename__ = "ca_issued"
    __table_args__ = (Index("ix_ca_issued_issuer_time", "issuer", "issued_at"),)

    serial: Mapped[str] = mapped_column(String(40), primary_key=True)  # the unique constraint
    issuer: Mapped[str] = mapped_column(String(64), ForeignKey("ca_issuers.name"))
    subject: Mapped[str] = mapped_column(Text)
    names: Mapped[str] = mapped_column(Text)  # JSON list
    profile: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[dt.datetime]
    not_after: Mapped[dt.datetime]
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    requested_by: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[dt.datetime]


class CaRevocationRow(Base):
    __tablename__ = "ca_revocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    serial: Mapped[str] = mapped_column(String(40), ForeignKey("ca_issued.serial"), unique=True)
    issuer: Mapped[str] = mapped_column(String(64), ForeignKey("ca_issuers.name"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[dt.datetime]
    revoked_by: Mapped[str] = mapped_column(Text)


class CaCrlRow(Base):
    __tablename__ = "ca_crls"
    __table_args__ = (UniqueConstraint("issuer", "number", name="uq_ca_crls_issuer_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issuer: Mapped[str] = mapped_column(String(64), ForeignKey("ca_issuers.name"))
    number: Mapped[int] = mapped_column(Integer)
    this_update: Mapped[dt.datetime]
    next_update: Mapped[dt.datetime]
    der: Mapped[bytes] = mapped_column(LargeBinary)


class CaAuditRow(Base):
    __tablename__ = "ca_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(16))
    issuer: Mapped[str | None] = mapped_column(String(64))
    serial: Mapped[str | None] = mapped_column(String(40), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class CaSettingRow(Base):
    __tablename__ = "ca_settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON document
