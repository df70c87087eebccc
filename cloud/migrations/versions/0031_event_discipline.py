"""An event's discipline (athletics, swimming, a concert…), as the public site's search
offers it; optional, free text as the organiser names it.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("discipline", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("discipline")
