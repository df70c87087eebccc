"""Two indexes for best-available single seats: a zone's seats by status in rank order, and
its held seats by deadline.

Without them the best free seat of a zone was found by reading every takeable seat of the
zone and sorting them: the cost of each hold grew with the zone (cloud/inventory/holds.py).
With them the free seats are read best first and the search stops at the first few; the
lapsed holds are found by their deadline.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07
"""

from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_session_seats_best", "session_seats",
                    ["session_id", "zone_id", "status", "rank", "row_key", "position"])
    op.create_index("ix_session_seats_lapsing", "session_seats",
                    ["session_id", "zone_id", "status", "held_until"])


def downgrade() -> None:
    op.drop_index("ix_session_seats_lapsing", table_name="session_seats")
    op.drop_index("ix_session_seats_best", table_name="session_seats")
