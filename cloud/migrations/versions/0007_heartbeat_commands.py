"""What appliances report in their heartbeats, and commands waiting for them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("appliances") as batch:
        batch.add_column(sa.Column("reported", sa.JSON))
        batch.add_column(sa.Column("clock_skew_ms", sa.BigInteger))
    op.create_table(
        "appliance_commands",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("appliance_id", sa.Integer,
                  sa.ForeignKey("appliances.id", name="fk_appliance_commands_appliance_id_appliances"),
                  nullable=False),
        sa.Column("command", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("command IN ('resync', 'roll_credential', 'wipe')",
                           name="ck_appliance_commands_command_known"),
    )


def downgrade() -> None:
    op.drop_table("appliance_commands")
    with op.batch_alter_table("appliances") as batch:
        batch.drop_column("clock_skew_ms")
        batch.drop_column("reported")
