"""Each session's own seat configuration and inventory.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("on_sale", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("config_confirmed_at", sa.DateTime(timezone=True)))
    op.create_table(
        "session_seats",
        sa.Column("session_id", sa.Integer,
                  sa.ForeignKey("sessions.id", name="fk_session_seats_session_id_sessions"),
                  primary_key=True),
        sa.Column("seat_id", sa.Integer,
                  sa.ForeignKey("seats.id", name="fk_session_seats_seat_id_seats"),
                  primary_key=True),
        sa.Column("category", sa.String(12), nullable=False),
        sa.Column("status", sa.String(10), nullable=False, server_default="available"),
        sa.Column("reserved_for", sa.String(200)),
        sa.Column("reserved_until", sa.DateTime(timezone=True)),
        sa.CheckConstraint("category IN ('sellable', 'registered', 'occupied', 'emergency')",
                           name="ck_session_seats_category_known"),
        sa.CheckConstraint("status IN ('available', 'sold')", name="ck_session_seats_status_known"),
    )


def downgrade() -> None:
    op.drop_table("session_seats")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("config_confirmed_at")
        batch.drop_column("on_sale")
