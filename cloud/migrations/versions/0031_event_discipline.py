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


# A plain ALTER TABLE on both databases (SQLite adds and drops a column in place since 3.35):
# a batch copy of events would have to drop a table sessions refer to.


def upgrade() -> None:
    op.add_column("events", sa.Column("discipline", sa.String(40)))


def downgrade() -> None:
    op.drop_column("events", "discipline")
