"""The messaging outbox: messages written in the transaction of their cause, recipient and
parameters sealed, found by the keyed hash of the address, sent by the messaging workers under
a delivery id the providers de-duplicate on.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("delivery_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("sealed_to", sa.Text, nullable=False),
        sa.Column("to_hash", sa.String(64), nullable=False),
        sa.Column("sealed_params", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("dedupe_key", sa.String(160)),
        sa.Column("task_id", sa.Integer),
        sa.Column("state", sa.String(10), nullable=False, server_default="waiting"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("run_after", WHEN, nullable=False),
        sa.Column("taken_by", sa.String(120)),
        sa.Column("taken_until", WHEN),
        sa.Column("provider_ref", sa.String(120)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("sent_at", WHEN),
        sa.Column("finished_at", WHEN),
        sa.CheckConstraint("channel IN ('sms', 'email', 'wechat')",
                           name="ck_outbox_channel_known"),
        sa.CheckConstraint("state IN ('waiting', 'sent', 'delivered', 'failed', 'dead')",
                           name="ck_outbox_state_known"),
        sa.CheckConstraint("language IN ('zh', 'en')", name="ck_outbox_language_known"),
        sa.CheckConstraint("attempts >= 0 AND max_attempts >= 1",
                           name="ck_outbox_attempts_range"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("delivery_id", name="uq_outbox_delivery_id"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
    )
    op.create_index("ix_outbox_to_hash", "outbox", ["to_hash"])
    op.create_index("ix_outbox_task_id", "outbox", ["task_id"])
    op.create_index("ix_outbox_state_run_after", "outbox", ["state", "run_after"])


def downgrade() -> None:
    op.drop_table("outbox")
