"""Risk flags: a holder (by document type and the keyed hash of the number, the number sealed)
or a buyer kept from buying, from refunds or from entry, for a reason, until the flag expires
or is lifted; the venues an entry flag's block was sent to and when its delete was. The
permission ``buyers.flag`` for the system administrator and ticketing operations.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
PERMISSION = "buyers.flag"
ROLES = ("admin", "ticketing")


def upgrade() -> None:
    op.create_table(
        "risk_flags",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("target", sa.String(10), nullable=False),
        sa.Column("blocks", sa.String(10), nullable=False),
        sa.Column("buyer", sa.String(80)),
        sa.Column("doc_type", sa.String(40)),
        sa.Column("doc_hash", sa.String(64)),
        sa.Column("sealed_doc_number", sa.Text),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN),
        sa.Column("lifted_by", sa.String(80)),
        sa.Column("lifted_at", WHEN),
        sa.Column("lift_reason", sa.String(200)),
        sa.Column("venues", sa.JSON, nullable=False),
        sa.Column("unblocked_at", WHEN),
        sa.CheckConstraint("target IN ('holder', 'buyer')", name="ck_risk_flags_target_known"),
        sa.CheckConstraint("blocks IN ('buy', 'refunds', 'entry')",
                           name="ck_risk_flags_blocks_known"),
        sa.CheckConstraint("(target = 'holder' AND doc_type IS NOT NULL AND doc_hash IS NOT NULL "
                           "AND buyer IS NULL) OR (target = 'buyer' AND buyer IS NOT NULL "
                           "AND doc_hash IS NULL AND doc_type IS NULL)",
                           name="ck_risk_flags_target_named"),
        sa.CheckConstraint("blocks != 'entry' OR target = 'holder'",
                           name="ck_risk_flags_entry_by_holder"),
        sa.CheckConstraint("expires_at IS NULL OR expires_at > created_at",
                           name="ck_risk_flags_expires_after_created"),
        sa.CheckConstraint("(lifted_at IS NULL) = (lifted_by IS NULL)",
                           name="ck_risk_flags_lifted_by_someone"),
        sa.PrimaryKeyConstraint("id", name="pk_risk_flags"),
    )
    op.create_index("ix_risk_flags_doc_hash", "risk_flags", ["doc_hash"])
    op.create_index("ix_risk_flags_buyer", "risk_flags", ["buyer"])
    op.create_index("ix_risk_flags_blocks_unblocked_at", "risk_flags",
                    ["blocks", "unblocked_at"])
    role_permissions = sa.table("role_permissions", sa.column("role", sa.String),
                                sa.column("permission", sa.String))
    roles = sa.table("roles", sa.column("name", sa.String))
    present = set(op.get_bind().execute(sa.select(roles.c.name)).scalars())
    rows = [{"role": role, "permission": PERMISSION} for role in ROLES if role in present]
    if rows:
        op.bulk_insert(role_permissions, rows)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM role_permissions WHERE permission = :p")
               .bindparams(p=PERMISSION))
    op.drop_table("risk_flags")
