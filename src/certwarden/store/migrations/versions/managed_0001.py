"""Managed certificates: the certificates, their locations, attempts, notifications, and the
agent's job schedule.

Revision ID: managed_0001
Revises: inv_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "managed_0001"
down_revision = "inv_0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "managed_certs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("names", sa.Text, nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("key_policy", sa.String(16), nullable=False),
        sa.Column("renew_before_s", sa.Integer),
        sa.Column("recipe", sa.Text, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("not_before", _TS, nullable=False),
        sa.Column("not_after", _TS, nullable=False),
        sa.Column("renew_at", _TS, nullable=False),
        sa.Column("next_attempt_at", _TS),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", _TS),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_managed_certs_renew_at", "managed_certs", ["renew_at"])
    op.create_table(
        "managed_locations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("managed_id", sa.Integer, sa.ForeignKey("managed_certs.id"), nullable=False,
                  index=True),
        sa.Column("uri_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("uri", sa.Text, nullable=False),
    )
    op.create_table(
        "managed_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("managed_id", sa.Integer, sa.ForeignKey("managed_certs.id"), nullable=False,
                  index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("serial", sa.String(40)),
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=False),
    )
    op.create_table(
        "managed_notifications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("threshold", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(400), nullable=False),
        sa.Column("managed_id", sa.Integer, sa.ForeignKey("managed_certs.id"), index=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", _TS),
        sa.Column("lease_until", _TS),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS),
        sa.UniqueConstraint("event", "subject", "threshold", "channel", "target",
                            name="uq_managed_notifications_once"),
    )
    op.create_table(
        "managed_jobs",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("last_run_at", _TS),
        sa.Column("next_run_at", _TS),
        sa.Column("last_outcome", sa.Text),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", _TS),
    )


def downgrade() -> None:
    for table in ("managed_jobs", "managed_notifications", "managed_attempts",
                  "managed_locations", "managed_certs"):
        op.drop_table(table)
