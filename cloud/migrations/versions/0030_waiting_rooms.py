"""The waiting room per session: its own rate and burst (or the hub's), how many queue
numbers were handed out, and how many were admitted at which moment at which rate.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "waiting_rooms",
        sa.Column("session_id", sa.Integer, nullable=False),
        sa.Column("rate", sa.Float),
        sa.Column("burst", sa.Integer),
        sa.Column("issued", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("frontier", sa.Float, nullable=False, server_default="0"),
        sa.Column("anchor_us", sa.BigInteger),
        sa.Column("anchor_rate", sa.Float, nullable=False, server_default="0"),
        sa.CheckConstraint("rate >= 0", name="ck_waiting_rooms_rate_not_negative"),
        sa.CheckConstraint("burst >= 1", name="ck_waiting_rooms_burst_positive"),
        sa.CheckConstraint("issued >= 0", name="ck_waiting_rooms_issued_not_negative"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"],
                                name="fk_waiting_rooms_session_id_sessions"),
        sa.PrimaryKeyConstraint("session_id", name="pk_waiting_rooms"),
    )


def downgrade() -> None:
    op.drop_table("waiting_rooms")
