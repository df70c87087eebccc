"""Staff sign-in hardening: when each password was chosen and the last hashes of each account
(the password policy's age and reuse limits), TOTP secrets and recovery codes (the second
step of sign-in), and rate-limit counters shared by every app process.

Existing accounts keep working: their passwords count as chosen now, not as expired.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("password_changed_at", WHEN))
    op.execute(sa.text("UPDATE staff SET password_changed_at = created_at"))
    op.create_table(
        "password_history",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("staff_id", sa.Integer, nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"],
                                name="fk_password_history_staff_id_staff"),
        sa.PrimaryKeyConstraint("id", name="pk_password_history"),
    )
    op.create_index("ix_password_history_staff_id", "password_history", ["staff_id"])
    op.create_table(
        "staff_totp",
        sa.Column("staff_id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("confirmed_at", WHEN),
        sa.Column("last_step", sa.BigInteger),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name="fk_staff_totp_staff_id_staff"),
        sa.PrimaryKeyConstraint("staff_id", name="pk_staff_totp"),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("staff_id", sa.Integer, nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("used_at", WHEN),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"],
                                name="fk_recovery_codes_staff_id_staff"),
        sa.PrimaryKeyConstraint("id", name="pk_recovery_codes"),
        sa.UniqueConstraint("code_hash", name="uq_recovery_codes_code_hash"),
    )
    op.create_index("ix_recovery_codes_staff_id", "recovery_codes", ["staff_id"])
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_limits"),
    )
    op.create_index("ix_rate_limits_expires_at", "rate_limits", ["expires_at"])


def downgrade() -> None:
    op.drop_table("rate_limits")
    op.drop_table("recovery_codes")
    op.drop_table("staff_totp")
    op.drop_table("password_history")
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("password_changed_at")
