"""Buyer accounts: buyers (mobile and e-mail sealed, found by their keyed hashes), their sessions
(only the token's hash), the one-time codes sent to them (only the code's keyed hash) and their
companions (name and document sealed; one live row per document per buyer); customer service
and the system administrator may see the buyers page (``buyers.view``).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "buyers",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("mobile_hash", sa.String(64), nullable=False),
        sa.Column("sealed_mobile", sa.Text, nullable=False),
        sa.Column("email_hash", sa.String(64)),
        sa.Column("sealed_email", sa.Text),
        sa.Column("password_hash", sa.String(200)),
        sa.Column("password_changed_at", WHEN),
        sa.Column("language", sa.String(8), nullable=False, server_default="zh"),
        sa.Column("state", sa.String(10), nullable=False, server_default="active"),
        sa.Column("failed_sign_ins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", WHEN),
        sa.Column("live_companions", sa.Integer, nullable=False, server_default="0"),
        sa.Column("identity_id", sa.Integer),
        sa.Column("created_at", WHEN, nullable=False),
        sa.CheckConstraint("language IN ('zh', 'en')", name="ck_buyers_language_known"),
        sa.CheckConstraint("state IN ('active', 'disabled')", name="ck_buyers_state_known"),
        sa.CheckConstraint("failed_sign_ins >= 0", name="ck_buyers_failures_not_negative"),
        sa.CheckConstraint("live_companions >= 0", name="ck_buyers_companions_not_negative"),
        sa.PrimaryKeyConstraint("id", name="pk_buyers"),
        sa.UniqueConstraint("mobile_hash", name="uq_buyers_mobile_hash"),
    )
    op.create_index("ix_buyers_email_hash", "buyers", ["email_hash"])
    op.create_table(
        "buyer_sessions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("buyer_id", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("last_seen_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("ended_at", WHEN),
        sa.Column("user_agent", sa.String(200)),
        sa.Column("address_masked", sa.String(64)),
        sa.ForeignKeyConstraint(["buyer_id"], ["buyers.id"],
                                name="fk_buyer_sessions_buyer_id_buyers"),
        sa.PrimaryKeyConstraint("id", name="pk_buyer_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_buyer_sessions_token_hash"),
    )
    op.create_index("ix_buyer_sessions_buyer_id", "buyer_sessions", ["buyer_id"])
    op.create_table(
        "buyer_codes",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("mobile_hash", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("used_at", WHEN),
        sa.CheckConstraint("purpose IN ('register', 'sign_in', 'password_reset')",
                           name="ck_buyer_codes_purpose_known"),
        sa.CheckConstraint("attempts >= 0", name="ck_buyer_codes_attempts_not_negative"),
        sa.PrimaryKeyConstraint("id", name="pk_buyer_codes"),
    )
    op.create_index("ix_buyer_codes_mobile_purpose", "buyer_codes", ["mobile_hash", "purpose"])
    op.create_table(
        "companions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("buyer_id", sa.Integer, nullable=False),
        sa.Column("sealed_name", sa.Text, nullable=False),
        sa.Column("doc_type", sa.String(20), nullable=False),
        sa.Column("sealed_doc_number", sa.Text, nullable=False),
        sa.Column("doc_hash", sa.String(64), nullable=False),
        sa.Column("identity_id", sa.Integer),
        sa.Column("added_at", WHEN, nullable=False),
        sa.Column("removed_at", WHEN),
        sa.ForeignKeyConstraint(["buyer_id"], ["buyers.id"],
                                name="fk_companions_buyer_id_buyers"),
        sa.PrimaryKeyConstraint("id", name="pk_companions"),
    )
    op.create_index("ix_companions_buyer_id", "companions", ["buyer_id"])
    op.create_index("ix_companions_doc_hash", "companions", ["doc_hash"])
    live = "removed_at IS NULL"
    op.create_index("ix_companions_one_live_per_document", "companions",
                    ["buyer_id", "doc_hash"], unique=True,
                    sqlite_where=sa.text(live), postgresql_where=sa.text(live))
    # customer service (and the system administrator) see the buyers page
    op.execute("INSERT INTO role_permissions (role, permission) SELECT name, 'buyers.view' "
               "FROM roles WHERE name IN ('admin', 'service')")


def downgrade() -> None:
    op.execute("DELETE FROM role_permissions WHERE permission = 'buyers.view'")
    op.drop_table("companions")
    op.drop_table("buyer_codes")
    op.drop_table("buyer_sessions")
    op.drop_table("buyers")
