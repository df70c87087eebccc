"""Lanes as each appliance reports them in its heartbeat (code, gate code, name), so that the
ops pages lead a lane's entries and devices to its gate when the hub itself defines no lanes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appliance_lanes",
        sa.Column("appliance_id", sa.Integer,
                  sa.ForeignKey("appliances.id", name="fk_appliance_lanes_appliance_id_appliances"),
                  nullable=False, autoincrement=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("gate_code", sa.String(64)),
        sa.Column("name", sa.String(128), nullable=False, server_default=""),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("appliance_id", "code", name="pk_appliance_lanes"),
    )


def downgrade() -> None:
    op.drop_table("appliance_lanes")
