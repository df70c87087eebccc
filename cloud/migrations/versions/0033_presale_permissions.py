"""The presale lottery's permissions: ``presale.manage`` (set up a presale, open and freeze
it, start the refunds, assign seats) and ``presale.draw`` (enter the seed, run or import the
draw), for the system administrator and ticketing operations; the seed still needs two
different people holding ``presale.draw``.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

PERMISSIONS = ("presale.manage", "presale.draw")
ROLES = ("admin", "ticketing")


def upgrade() -> None:
    role_permissions = sa.table("role_permissions", sa.column("role", sa.String),
                                sa.column("permission", sa.String))
    roles = sa.table("roles", sa.column("name", sa.String))
    present = set(op.get_bind().execute(sa.select(roles.c.name)).scalars())
    rows = [{"role": role, "permission": p} for role in ROLES if role in present
            for p in PERMISSIONS]
    if rows:
        op.bulk_insert(role_permissions, rows)


def downgrade() -> None:
    for p in PERMISSIONS:
        op.execute(sa.text("DELETE FROM role_permissions WHERE permission = :p")
                   .bindparams(p=p))
