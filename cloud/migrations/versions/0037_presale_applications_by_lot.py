"""An index of a presale's applications by lot and state.

The worker looks every minute for the applications of lots whose session was cancelled
(cloud/lottery/cancelling.py): without this index each look read every application of every
presale.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07
"""

from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_presale_applications_lot_state", "presale_applications",
                    ["lot_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_presale_applications_lot_state", table_name="presale_applications")
