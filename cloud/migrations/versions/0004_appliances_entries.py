"""Appliances and their enrollment, and the entries they report.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appliances",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id", name="fk_appliances_venue_id_venues"),
                  nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("token_hash", sa.String(64)),
        sa.Column("token_expires_at", sa.DateTime(timezone=True)),
        sa.Column("credential_hash", sa.String(64)),
        sa.Column("enrolled_at", sa.DateTime(timezone=True)),
        sa.Column("last_seen_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_appliances_token_hash"),
        sa.UniqueConstraint("credential_hash", name="uq_appliances_credential_hash"),
        sa.CheckConstraint("state IN ('pending', 'active', 'revoked')",
                           name="ck_appliances_state_known"),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("appliance_id", sa.Integer,
                  sa.ForeignKey("appliances.id", name="fk_entries_appliance_id_appliances"),
                  nullable=False),
        sa.Column("venue_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lane", sa.String(40)),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("ticket_id", sa.BigInteger),
        sa.Column("session_id", sa.Integer),
        sa.Column("admitted", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("cursor", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_entries_ticket_id", "entries", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_entries_ticket_id", table_name="entries")
    op.drop_table("entries")
    op.drop_table("appliances")
