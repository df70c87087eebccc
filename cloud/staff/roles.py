"""Roles as data: what each role may do is read from the ``roles`` and ``role_permissions``
tables, on every request (a role changed, or a permission given or taken, counts at the next
request, as a changed account does), never from a list in code.

No role is special here: the system administrator may do everything because its rows name
every permission (migration 0019), not because of its name. The permissions themselves are
named in :mod:`cloud.staff.permissions`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from cloud.staff.tables import role_permissions, roles, staff


@dataclass(frozen=True)
class Role:
    name: str
    title_en: str
    title_zh: str
    totp_required: bool
    built_in: bool


_ROLE = sa.select(roles.c.name, roles.c.title_en, roles.c.title_zh, roles.c.totp_required,
                  roles.c.built_in)


def _role(row: sa.Row) -> Role:
    return Role(row.name, row.title_en, row.title_zh, bool(row.totp_required), bool(row.built_in))


def list_roles(conn: sa.Connection) -> list[Role]:
    """Every role, in the order lists show them."""
    return [_role(r) for r in conn.execute(_ROLE.order_by(roles.c.position, roles.c.name))]


def role_names(conn: sa.Connection) -> tuple[str, ...]:
    return tuple(conn.execute(sa.select(roles.c.name)
                              .order_by(roles.c.position, roles.c.name)).scalars())


def get_role(conn: sa.Connection, name: str) -> Role | None:
    row = conn.execute(_ROLE.where(roles.c.name == name)).first()
    return _role(row) if row is not None else None


def permissions_of(conn: sa.Connection, *names: str) -> frozenset[str]:
    """What staff of any of these roles may do (the union of the roles' permissions)."""
    if not names:
        return frozenset()
    return frozenset(conn.execute(sa.select(role_permissions.c.permission).where(
        role_permissions.c.role.in_(names))).scalars())


def permissions_by_role(conn: sa.Connection, *names: str) -> dict[str, frozenset[str]]:
    """Each of these roles' permissions, read in one statement (a role with none: empty)."""
    found: dict[str, set[str]] = {name: set() for name in names}
    for row in conn.execute(sa.select(role_permissions.c.role, role_permissions.c.permission)
                            .where(role_permissions.c.role.in_(set(names)))):
        found[row.role].add(row.permission)
    return {name: frozenset(perms) for name, perms in found.items()}


def matrix(conn: sa.Connection) -> dict[str, frozenset[str]]:
    """Each role's permissions (a role with none has an empty set)."""
    found: dict[str, set[str]] = {name: set() for name in role_names(conn)}
    for row in conn.execute(sa.select(role_permissions.c.role, role_permissions.c.permission)):
        found.setdefault(row.role, set()).add(row.permission)
    return {name: frozenset(perms) for name, perms in found.items()}


def holders(conn: sa.Connection, permission: str) -> tuple[str, ...]:
    """The roles that have ``permission``."""
    return tuple(conn.execute(sa.select(role_permissions.c.role).where(
        role_permissions.c.permission == permission).order_by(role_permissions.c.role))
        .scalars())


def account_counts(conn: sa.Connection) -> dict[str, int]:
    """How many accounts have each role (disabled ones included)."""
    rows = conn.execute(sa.select(staff.c.role, sa.func.count()).group_by(staff.c.role)).all()
    return {role: count for role, count in rows}


def within(conn: sa.Connection, role: str, owner_role: str) -> bool:
    """Whether ``role`` gives nothing ``owner_role`` does not have (so its holder may hand it
    to an API token)."""
    return permissions_of(conn, role) <= permissions_of(conn, owner_role)


def totp_required(conn: sa.Connection, role: str) -> bool:
    """The role's own flag: whether its accounts must sign in with a second step."""
    return bool(conn.execute(sa.select(roles.c.totp_required)
                             .where(roles.c.name == role)).scalar())
