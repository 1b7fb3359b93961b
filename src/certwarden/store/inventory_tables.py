"""Inventory tables (migration ``inv_0001``). Rows never leave ``certwarden.store``.

Identity: a certificate by the SHA-256 of its DER, a location by its URI (indexed through
the URI's SHA-256 so a long file path never hits an index-size limit), a sighting by
(location, certificate, position). A scan observes sightings (``inv_observations``), so
re-running a scan adds no sighting rows, only observations and a newer ``last_seen``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from certwarden.store.db import Base


class CertificateRow(Base):
    __tablename__ = "inv_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    subject: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    not_after: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(String(16))
    first_seen: Mapped[dt.datetime]


class OwnerRow(Base):
    __tablename__ = "inv_owners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    contact: Mapped[str | None] = mapped_column(Text)


class LocationRow(Base):
    __tablename__ = "inv_locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uri_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    uri: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(8))
    host: Mapped[str | None] = mapped_column(Text)
    port: Mapped[int | None]
    sni: Mapped[str | None] = mapped_column(Text)
    starttls: Mapped[str | None] = mapped_column(String(16))
    path: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]
    gone_at: Mapped[dt.datetime | None]  # set when a later scan no longer found it
    current_cert_id: Mapped[int | None] = mapped_column(ForeignKey("inv_certificates.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("inv_owners.id"))


class ScanRow(Base):
    __tablename__ = "inv_scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    targets: Mapped[str] = mapped_column(Text)  # JSON list, as given
    targets_key: Mapped[str] = mapped_column(String(64), index=True)  # SHA-256 of sorted targets
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    sightings: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)


class SightingRow(Base):
    __tablename__ = "inv_sightings"
    __table_args__ = (UniqueConstraint("location_id", "certificate_id", "position",
                                       name="uq_inv_sightings_loc_cert_pos"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("inv_locations.id"))
    certificate_id: Mapped[int] = mapped_column(ForeignKey("inv_certificates.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    chain: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of SHA-256, after leaf
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]
    first_scan_id: Mapped[int] = mapped_column(ForeignKey("inv_scans.id"))
    last_scan_id: Mapped[int] = mapped_column(ForeignKey("inv_scans.id"))
    tls_version: Mapped[str | None] = mapped_column(String(32))
    cipher: Mapped[str | None] = mapped_column(Text)
    alpn: Mapped[str | None] = mapped_column(String(64))
    file_mode: Mapped[int | None]
    file_owner: Mapped[str | None] = mapped_column(Text)
    key_path: Mapped[str | None] = mapped_column(Text)
    key_encrypted: Mapped[bool | None] = mapped_column(Boolean)
    key_mode: Mapped[int | None]
    key_owner: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[str] = mapped_column(Text, default="{}")  # JSON object


class ObservationRow(Base):
    __tablename__ = "inv_observations"

    scan_id: Mapped[int] = mapped_column(ForeignKey("inv_scans.id"), primary_key=True)
    sighting_id: Mapped[int] = mapped_column(ForeignKey("inv_sightings.id"), primary_key=True)


class OutcomeRow(Base):
    __tablename__ = "inv_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("inv_scans.id"), index=True)
    target: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime]


class ChangeRow(Base):
    __tablename__ = "inv_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("inv_scans.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("inv_locations.id"))
    change: Mapped[str] = mapped_column(String(16))  # new | changed | gone | back
    old_cert_id: Mapped[int | None] = mapped_column(ForeignKey("inv_certificates.id"))
    new_cert_id: Mapped[int | None] = mapped_column(ForeignKey("inv_certificates.id"))
    at: Mapped[dt.datetime]


class TagRow(Base):
    __tablename__ = "inv_tags"
    __table_args__ = (UniqueConstraint("location_id", "tag", name="uq_inv_tags_loc_tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("inv_locations.id"))
    tag: Mapped[str] = mapped_column(String(100))


Index("ix_inv_sightings_location", SightingRow.location_id)
Index("ix_inv_observations_sighting", ObservationRow.sighting_id)
