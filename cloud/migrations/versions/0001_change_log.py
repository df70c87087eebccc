"""The change log the allowlist is served from, and its counter.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.CheckConstraint("value >= 0", name="ck_counters_value_not_negative"),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    op.bulk_insert(sa.table("counters", sa.column("name", sa.String), sa.column("value",
                                                                              sa.BigInteger)),
                   [{"name": "change_log", "value": 0}])
    op.create_table(
        "change_log",
        sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("venue_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("op", sa.String(10), nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("op IN ('upsert', 'delete')", name="ck_change_log_op_known"),
        sa.PrimaryKeyConstraint("seq", name="pk_change_log"),
    )
    op.create_index("ix_change_log_venue_seq", "change_log", ["venue_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_change_log_venue_seq", table_name="change_log")
    op.drop_table("change_log")
    op.drop_table("counters")
