"""Box-office staff ask for refunds, ticketing operations see partners' accounts.

A ticket paid through an order is no longer "refunded" by itself at the ticket's page (that
moved no money back): its refund is a request on the order, approved by a second person. So
the built-in box-office role (``sales``), which refunded tickets at the counter, now holds
``orders.request_refund``. Ticketing operations, who run the channels and set partners' credit
limits and warning thresholds (``channels.manage``), could not open the partners' accounts
pages those settings are on: the built-in ``ticketing`` role now holds ``finance.view``. Each
grant is added only where the role exists and lacks it (roles are data staff may have
changed); the downgrade takes back exactly these grants.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

GRANTS = (("sales", "orders.request_refund"), ("ticketing", "finance.view"))


def _tables():
    return (sa.table("role_permissions", sa.column("role", sa.String),
                     sa.column("permission", sa.String)),
            sa.table("roles", sa.column("name", sa.String)))


def upgrade() -> None:
    role_permissions, roles = _tables()
    bind = op.get_bind()
    present = set(bind.execute(sa.select(roles.c.name)).scalars())
    held = {tuple(r) for r in bind.execute(sa.select(role_permissions.c.role,
                                                     role_permissions.c.permission))}
    rows = [{"role": role, "permission": p} for role, p in GRANTS
            if role in present and (role, p) not in held]
    if rows:
        op.bulk_insert(role_permissions, rows)


def downgrade() -> None:
    role_permissions, _roles = _tables()
    for role, p in GRANTS:
        op.execute(sa.delete(role_permissions).where(role_permissions.c.role == role,
                                                     role_permissions.c.permission == p))
