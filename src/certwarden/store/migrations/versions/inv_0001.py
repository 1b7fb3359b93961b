"""Inventory: certificates, locations, scans, sightings, observations, outcomes, changes,
owners, tags.

Revision ID: inv_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "inv_0001"
down_revision = "0001_base"
branch_labels = ("inventory",)
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inv_certificates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("not_after", _TS, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("first_seen", _TS, nullable=False),
    )
    op.create_table(
        "inv_owners",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("contact", sa.Text),
    )
    op.create_table(
        "inv_locations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uri_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("host", sa.Text),
        sa.Column("port", sa.Integer),
        sa.Column("sni", sa.Text),
        sa.Column("starttls", sa.String(16)),
        sa.Column("path", sa.Text),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.Column("gone_at", _TS),
        sa.Column("current_cert_id", sa.Integer, sa.ForeignKey("inv_certificates.id")),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("inv_owners.id")),
    )
    op.create_table(
        "inv_scans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("targets", sa.Text, nullable=False),
        sa.Column("targets_key", sa.String(64), nullable=False, index=True),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS),
        sa.Column("sightings", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
    )
    op.create_table(
        "inv_sightings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("inv_locations.id"), nullable=False),
        sa.Column("certificate_id", sa.Integer, sa.ForeignKey("inv_certificates.id"),
                  nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("chain", sa.Text, nullable=False),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.Column("first_scan_id", sa.Integer, sa.ForeignKey("inv_scans.id"), nullable=False),
        sa.Column("last_scan_id", sa.Integer, sa.ForeignKey("inv_scans.id"), nullable=False),
        sa.Column("tls_version", sa.String(32)),
        sa.Column("cipher", sa.Text),
        sa.Column("alpn", sa.String(64)),
        sa.Column("file_mode", sa.Integer),
        sa.Column("file_owner", sa.Text),
        sa.Column("key_path", sa.Text),
        sa.Column("key_encrypted", sa.Boolean),
        sa.Column("key_mode", sa.Integer),
        sa.Column("key_owner", sa.Text),
        sa.Column("extra", sa.Text, nullable=False),
        sa.UniqueConstraint("location_id", "certificate_id", "position",
                            name="uq_inv_sightings_loc_cert_pos"),
    )
    op.create_index("ix_inv_sightings_location", "inv_sightings", ["location_id"])
    op.create_table(
        "inv_observations",
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("inv_scans.id"), primary_key=True),
        sa.Column("sighting_id", sa.Integer, sa.ForeignKey("inv_sightings.id"),
                  primary_key=True),
    )
    op.create_index("ix_inv_observations_sighting", "inv_observations", ["sighting_id"])
    op.create_table(
        "inv_outcomes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("inv_scans.id"), nullable=False,
                  index=True),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_table(
        "inv_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("inv_scans.id"), nullable=False,
                  index=True),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("inv_locations.id"), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("old_cert_id", sa.Integer, sa.ForeignKey("inv_certificates.id")),
        sa.Column("new_cert_id", sa.Integer, sa.ForeignKey("inv_certificates.id")),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_table(
        "inv_tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("inv_locations.id"), nullable=False),
        sa.Column("tag", sa.String(100), nullable=False),
        sa.UniqueConstraint("location_id", "tag", name="uq_inv_tags_loc_tag"),
    )


def downgrade() -> None:
    for table in ("inv_tags", "inv_changes", "inv_outcomes", "inv_observations",
                  "inv_sightings", "inv_scans", "inv_locations", "inv_owners",
                  "inv_certificates"):
        op.drop_table(table)
