"""Idempotency keys of the write APIs, the background jobs table, and (PostgreSQL) sequences
for ticket ids, holder ids and change-log seqs in place of their ``counters`` rows, so that
no sale queues behind another's row (``cloud/core/changes.py``).

On PostgreSQL each sequence starts after its counter's value and the three counter rows go
(nothing reads them there any more); going back puts them back at the sequences' values.
SQLite keeps its counter rows: its writers are serialised anyway.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
SEQUENCES = {"ticket": "ticket_id_seq", "holder": "holder_id_seq",
             "change_log": "change_log_seq"}


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("content_type", sa.String(100)),
        sa.Column("body", sa.LargeBinary),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(60), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(10), nullable=False, server_default="waiting"),
        sa.Column("run_after", WHEN, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("taken_by", sa.String(120)),
        sa.Column("taken_until", WHEN),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("done_at", WHEN),
        sa.CheckConstraint("state IN ('waiting', 'done', 'dead')", name="ck_jobs_state_known"),
        sa.CheckConstraint("attempts >= 0 AND max_attempts >= 1",
                           name="ck_jobs_attempts_range"),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_state_run_after", "jobs", ["state", "run_after"])
    if op.get_bind().dialect.name == "postgresql":
        for name, sequence in SEQUENCES.items():
            value = op.get_bind().execute(sa.text("SELECT value FROM counters WHERE name = :n"),
                                          {"n": name}).scalar() or 0
            op.execute(f"CREATE SEQUENCE {sequence} AS bigint START WITH {int(value) + 1}")
            op.execute(sa.text("DELETE FROM counters WHERE name = :n").bindparams(n=name))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, sequence in SEQUENCES.items():
            op.execute(f"INSERT INTO counters (name, value) SELECT '{name}', CASE WHEN "
                       f"is_called THEN last_value ELSE last_value - 1 END FROM {sequence}")
            op.execute(f"DROP SEQUENCE {sequence}")
    op.drop_index("ix_jobs_state_run_after", table_name="jobs")
    op.drop_table("jobs")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
