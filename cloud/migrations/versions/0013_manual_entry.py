"""Ticket numbers typed by staff: a gate's manual_entry policy (off), the scan kind and staff
member of each entry an appliance reports, and admissions by ticket number counted apart in
entry_minutes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gates") as batch:
        batch.add_column(sa.Column("manual_entry", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("kind", sa.String(20)))
        batch.add_column(sa.Column("staff", sa.String(64)))
    with op.batch_alter_table("entry_minutes") as batch:
        batch.add_column(sa.Column("manual_in", sa.Integer, nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("entry_minutes") as batch:
        batch.drop_column("manual_in")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("staff")
        batch.drop_column("kind")
    with op.batch_alter_table("gates") as batch:
        batch.drop_column("manual_entry")
