"""ACME server tables: accounts, orders, authorizations, challenges, certificates, EAB keys.

Orders and authorizations live here (not in process memory) so a restart loses nothing and
replicas share them. Status changes are compare-and-set updates (see ``acme_repo``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from certwarden.store.db import Base

ID = String(40)


class AcmeAccountRow(Base):
    __tablename__ = "acme_accounts"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    contact: Mapped[list[str]] = mapped_column(JSON, default=list)
    tos_agreed: Mapped[bool] = mapped_column(Boolean, default=False)
    eab_kid: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[dt.datetime]


class AcmeOrderRow(Base):
    __tablename__ = "acme_orders"
    __table_args__ = (Index("ix_acme_orders_account", "account_id", "created_at"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ID, ForeignKey("acme_accounts.id"))
    status: Mapped[str] = mapped_column(String(16))
    identifiers: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    profile: Mapped[str] = mapped_column(String(100))
    expires: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    not_before: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    not_after: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cert_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    replaces: Mapped[str | None] = mapped_column(String(200), nullable=True)


class AcmeAuthzRow(Base):
    __tablename__ = "acme_authzs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    order_id: Mapped[str] = mapped_column(ID, ForeignKey("acme_orders.id"), index=True)
    account_id: Mapped[str] = mapped_column(ID, ForeignKey("acme_accounts.id"))
    position: Mapped[int] = mapped_column(Integer)
    identifier_type: Mapped[str] = mapped_column(String(8))
    identifier_value: Mapped[str] = mapped_column(String(255))
    wildcard: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    expires: Mapped[dt.datetime]


class AcmeChallengeRow(Base):
    __tablename__ = "acme_challenges"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    authz_id: Mapped[str] = mapped_column(ID, ForeignKey("acme_authzs.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    validated: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class AcmeCertificateRow(Base):
    __tablename__ = "acme_certificates"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    order_id: Mapped[str] = mapped_column(ID, ForeignKey("acme_orders.id"), unique=True)
    account_id: Mapped[str] = mapped_column(ID, ForeignKey("acme_accounts.id"))
    serial: Mapped[str] = mapped_column(String(64), index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    ari_id: Mapped[str] = mapped_column(String(200), unique=True)
    chain_pem: Mapped[str] = mapped_column(Text)
    alternates: Mapped[list[str]] = mapped_column(JSON, default=list)
    not_before: Mapped[dt.datetime]
    not_after: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    revocation_reason: Mapped[int | None] = mapped_column(Integer, nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(ID, nullable=True)


class AcmeUsedNonceRow(Base):
    """Nonces already consumed, for servers run as several processes (see acme/nonces.py)."""

    __tablename__ = "acme_used_nonces"
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires: Mapped[dt.datetime] = mapped_column(index=True)


class AcmeSecretRow(Base):
    """Server-wide secrets every process shares (the nonce MAC key)."""

    __tablename__ = "acme_secrets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class AcmeEabKeyRow(Base):
    __tablename__ = "acme_eab_keys"
    kid: Mapped[str] = mapped_column(String(200), primary_key=True)
    hmac_key: Mapped[bytes] = mapped_column(LargeBinary)
    account_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    created_at: Mapped[dt.datetime]
