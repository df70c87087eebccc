"""A session's seat carries its price category (the venue map's category of the seat), kept
up to date with the map.

Best-available at a tier that prices one category read the category from the seat, seat by
seat. PostgreSQL cannot keep statistics on that read: it guessed that one seat in two hundred
matched, and for a zone of fewer than a few thousand free seats it planned to read and sort
them all instead of taking the best few in index order, 10 to 20 times the work of a hold.
On the session's seat the category is a column with its own statistics.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("session_seats") as batch:
        batch.add_column(sa.Column("price_category", sa.String(length=40), server_default="",
                                   nullable=False))
    op.execute(sa.text("UPDATE session_seats SET price_category = "
                       "(SELECT category FROM seats WHERE seats.id = session_seats.seat_id)"))


def downgrade() -> None:
    with op.batch_alter_table("session_seats") as batch:
        batch.drop_column("price_category")
