"""Roles become data: the ``roles`` table (key, titles in English and Chinese, whether its
accounts must sign in with a second step, made by the hub or not) and ``role_permissions``
(what each role may do, by the names of cloud/staff/permissions.py), seeded with the roles the
seeds name and a matrix to start from; ``staff.role`` refers to ``roles.name`` instead of the
CHECK that allowed three names.

Existing accounts keep their keys and their access: ``admin`` is the system administrator
(every permission), ``sales`` the box-office staff, ``ops`` operations, each with what its
pages allowed before. (The permissions are written out here, not read from the code: a
migration is history.)

On SQLite the staff table is rebuilt (batch mode) while other tables refer to it: its rows are
set aside, the table rebuilt empty and the rows put back, with the foreign keys checked at
commit (``defer_foreign_keys``), so nothing that refers to an account is lost or left
dangling.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

EVERYTHING = (
    "venues.view", "venues.manage", "sessions.manage", "seats.manage", "tickets.search",
    "tickets.sell", "tickets.refund", "tickets.reveal", "orders.request_refund",
    "orders.approve_refund", "finance.view", "content.manage", "appliances.view",
    "appliances.manage", "attendance.view", "alerts.manage", "displays.manage",
    "conflicts.resolve", "keys.manage", "staff.manage", "audit.view")

# key, English title, Chinese title, second step required, permissions
ROLES = (
    ("admin", "System administrator", "系统管理员", True, EVERYTHING),
    ("sales", "Box-office staff", "售票员", False,
     ("venues.view", "sessions.manage", "seats.manage", "tickets.search", "tickets.sell",
      "tickets.refund", "appliances.view")),
    ("ops", "Operations", "运维", False,
     ("venues.view", "tickets.search", "appliances.view", "attendance.view", "alerts.manage",
      "displays.manage", "conflicts.resolve")),
    ("outlet", "Outlet staff", "代售点人员", False,
     ("venues.view", "tickets.search", "tickets.sell")),
    ("client_rep", "Customer representative", "客户代表", False,
     ("venues.view", "tickets.search", "tickets.sell", "seats.manage")),
    ("gate_admin", "Validation administrator", "验票管理员", False,
     ("venues.view", "venues.manage", "tickets.search", "appliances.view",
      "appliances.manage", "attendance.view", "alerts.manage", "displays.manage",
      "conflicts.resolve")),
    ("service", "Customer service", "客服", False,
     ("venues.view", "tickets.search", "tickets.reveal", "orders.request_refund")),
    ("ticketing", "Ticketing operations", "票务运营", False,
     ("venues.view", "sessions.manage", "seats.manage", "tickets.search", "tickets.refund",
      "orders.approve_refund", "appliances.view")),
    ("content", "Content administrator", "内容管理员", False,
     ("venues.view", "content.manage")),
    ("finance", "Finance", "财务", True,
     ("tickets.search", "finance.view", "audit.view")),
)


def upgrade() -> None:
    roles = op.create_table(
        "roles",
        sa.Column("name", sa.String(10), nullable=False),
        sa.Column("title_en", sa.String(80), nullable=False),
        sa.Column("title_zh", sa.String(80), nullable=False),
        sa.Column("totp_required", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("built_in", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("name", name="pk_roles"),
    )
    role_permissions = op.create_table(
        "role_permissions",
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("permission", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(["role"], ["roles.name"], name="fk_role_permissions_role_roles"),
        sa.PrimaryKeyConstraint("role", "permission", name="pk_role_permissions"),
    )
    op.bulk_insert(roles, [
        {"name": name, "title_en": en, "title_zh": zh, "totp_required": totp, "built_in": True,
         "position": position}
        for position, (name, en, zh, totp, _perms) in enumerate(ROLES)])
    op.bulk_insert(role_permissions, [
        {"role": name, "permission": p} for name, _en, _zh, _totp, perms in ROLES for p in perms])
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_staff_sqlite(_with_role_key)
    else:
        _with_role_key_postgresql()


def _role_checks() -> list[str]:
    """The CHECK on staff.role by the name it has: that depends on how the table was made or
    last rebuilt (a rebuild names a reflected constraint again by the convention, and going
    back past this revision names it once), so it is looked up, not assumed."""
    return [c["name"] for c in sa.inspect(op.get_bind()).get_check_constraints("staff")
            if (c.get("name") or "").endswith("role_known")]


def _with_role_key(batch) -> None:
    for name in _role_checks():
        batch.drop_constraint(op.f(name), type_="check")
    batch.create_foreign_key("fk_staff_role_roles", "roles", ["role"], ["name"])


def _with_role_key_postgresql() -> None:
    for name in _role_checks():
        op.drop_constraint(op.f(name), "staff", type_="check")
    op.create_foreign_key("fk_staff_role_roles", "staff", "roles", ["role"], ["name"])


def _rebuild_staff_sqlite(change) -> None:
    """Rebuild ``staff`` in batch mode on SQLite, whose DROP TABLE would otherwise refuse
    while rows of other tables refer to accounts: the rows wait in a temporary table, the
    empty table is rebuilt, the rows come back, and the foreign keys are checked at commit."""
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute("CREATE TEMP TABLE staff_0019 AS SELECT * FROM staff")
    op.execute("DELETE FROM staff")
    with op.batch_alter_table("staff", recreate="always") as batch:
        change(batch)
    columns = ", ".join(f'"{row[1]}"' for row in op.get_bind().exec_driver_sql(
        "PRAGMA temp.table_info(staff_0019)"))
    op.execute(f"INSERT INTO staff ({columns}) SELECT {columns} FROM temp.staff_0019")
    op.execute("DROP TABLE temp.staff_0019")


def _without_role_key(batch) -> None:
    batch.drop_constraint("fk_staff_role_roles", type_="foreignkey")
    # batch mode names it by the metadata's convention (ck_<table>_<name>), op.f or not:
    # "role_known" comes back as ck_staff_role_known, the name revision 0001 gave it
    batch.create_check_constraint("role_known", sa.text("role IN ('admin', 'sales', 'ops')"))


def downgrade() -> None:
    # only the three roles the CHECK allows may remain; an account of another role is given
    # none of them silently: the downgrade stops instead
    other = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM staff WHERE role NOT IN ('admin', 'sales', 'ops')")).scalar()
    if other:
        raise RuntimeError(f"{other} staff accounts have roles other than admin, sales and ops: "
                           "give them one of those before going back past migration 0019")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_staff_sqlite(_without_role_key)
    else:
        op.drop_constraint("fk_staff_role_roles", "staff", type_="foreignkey")
        op.create_check_constraint(op.f("ck_staff_role_known"), "staff",
                                   sa.text("role IN ('admin', 'sales', 'ops')"))
    op.drop_table("role_permissions")
    op.drop_table("roles")
