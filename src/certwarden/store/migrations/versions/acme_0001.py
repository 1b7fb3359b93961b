"""ACME server: accounts, orders, authorizations, challenges, certificates, EAB keys.

Revision ID: acme_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "acme_0001"
down_revision = "0001_base"
branch_labels = ("acme",)
depends_on = None

TS = sa.DateTime(timezone=True)
ID = sa.String(40)


def upgrade() -> None:
    op.create_table(
        "acme_accounts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("thumbprint", sa.String(64), nullable=False, unique=True),
        sa.Column("jwk", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("contact", sa.JSON, nullable=False),
        sa.Column("tos_agreed", sa.Boolean, nullable=False),
        sa.Column("eab_kid", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "acme_orders",
        sa.Column("id", ID, primary_key=True),
        sa.Column("account_id", ID, sa.ForeignKey("acme_accounts.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("identifiers", sa.JSON, nullable=False),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("expires", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("not_before", TS, nullable=True),
        sa.Column("not_after", TS, nullable=True),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("cert_id", ID, nullable=True),
        sa.Column("replaces", sa.String(200), nullable=True),
    )
    op.create_index("ix_acme_orders_account", "acme_orders", ["account_id", "created_at"])
    op.create_table(
        "acme_authzs",
        sa.Column("id", ID, primary_key=True),
        sa.Column("order_id", ID, sa.ForeignKey("acme_orders.id"), nullable=False),
        sa.Column("account_id", ID, sa.ForeignKey("acme_accounts.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("identifier_type", sa.String(8), nullable=False),
        sa.Column("identifier_value", sa.String(255), nullable=False),
        sa.Column("wildcard", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires", TS, nullable=False),
    )
    op.create_index("ix_acme_authzs_order_id", "acme_authzs", ["order_id"])
    op.create_table(
        "acme_challenges",
        sa.Column("id", ID, primary_key=True),
        sa.Column("authz_id", ID, sa.ForeignKey("acme_authzs.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("validated", TS, nullable=True),
        sa.Column("error", sa.JSON, nullable=True),
    )
    op.create_index("ix_acme_challenges_authz_id", "acme_challenges", ["authz_id"])
    op.create_table(
        "acme_certificates",
        sa.Column("id", ID, primary_key=True),
        sa.Column("order_id", ID, sa.ForeignKey("acme_orders.id"), nullable=False, unique=True),
        sa.Column("account_id", ID, sa.ForeignKey("acme_accounts.id"), nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("ari_id", sa.String(200), nullable=False, unique=True),
        sa.Column("chain_pem", sa.Text, nullable=False),
        sa.Column("alternates", sa.JSON, nullable=False),
        sa.Column("not_before", TS, nullable=False),
        sa.Column("not_after", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revocation_reason", sa.Integer, nullable=True),
        sa.Column("replaced_by", ID, nullable=True),
    )
    op.create_index("ix_acme_certificates_serial", "acme_certificates", ["serial"])
    op.create_table(
        "acme_eab_keys",
        sa.Column("kid", sa.String(200), primary_key=True),
        sa.Column("hmac_key", sa.LargeBinary, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "acme_used_nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("expires", TS, nullable=False),
    )
    op.create_index("ix_acme_used_nonces_expires", "acme_used_nonces", ["expires"])
    op.create_table(
        "acme_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    for table in ("acme_secrets", "acme_used_nonces", "acme_eab_keys", "acme_certificates",
                  "acme_challenges", "acme_authzs", "acme_orders", "acme_accounts"):
        op.drop_table(table)
