"""Private CA tables: issuers, issued, revocations, CRLs, audit, settings.

Revision ID: ca_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

from certwarden.store.db import UTCDateTime

revision = "ca_0001"
down_revision = "0001_base"
branch_labels = ("ca",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ca_issuers",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary, nullable=False),
        sa.Column("key_ref", sa.Text, nullable=False),
        sa.Column("parent", sa.String(64), sa.ForeignKey("ca_issuers.name"), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "ca_issued",
        sa.Column("serial", sa.String(40), primary_key=True),
        sa.Column("issuer", sa.String(64), sa.ForeignKey("ca_issuers.name"), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("names", sa.Text, nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("not_after", UTCDateTime(), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_ca_issued_issuer_time", "ca_issued", ["issuer", "issued_at"])
    op.create_table(
        "ca_revocations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("serial", sa.String(40), sa.ForeignKey("ca_issued.serial"), nullable=False,
                  unique=True),
        sa.Column("issuer", sa.String(64), sa.ForeignKey("ca_issuers.name"), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_by", sa.Text, nullable=False),
    )
    op.create_index("ix_ca_revocations_issuer", "ca_revocations", ["issuer"])
    op.create_table(
        "ca_crls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("issuer", sa.String(64), sa.ForeignKey("ca_issuers.name"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("this_update", UTCDateTime(), nullable=False),
        sa.Column("next_update", UTCDateTime(), nullable=False),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("issuer", "number", name="uq_ca_crls_issuer_number"),
    )
    op.create_table(
        "ca_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("issuer", sa.String(64), nullable=True),
        sa.Column("serial", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_ca_audit_at", "ca_audit", ["at"])
    op.create_index("ix_ca_audit_serial", "ca_audit", ["serial"])
    op.create_table(
        "ca_settings",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for name in ("ca_settings", "ca_audit", "ca_crls", "ca_revocations", "ca_issued",
                 "ca_issuers"):
        op.drop_table(name)
