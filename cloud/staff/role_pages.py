"""The roles page (``/staff/roles``), for those who run staff accounts: every role with its
title, whether its accounts must sign in with a second step and how many accounts have it,
and the matrix of roles and the permissions each has (cloud/staff/permissions.py), each
permission described in the page's language. Viewing only: roles and their permissions are
seeded by migration 0019.
"""

from __future__ import annotations

from flask import render_template
from flask_babel import gettext

from cloud.staff import roles
from cloud.staff.permissions import PERMISSIONS
from cloud.web.web import engine, page_blueprint, permission

bp = page_blueprint("roles", "/staff/roles")


@bp.get("")
@permission("staff.manage")
def index():
    with engine().connect() as conn:
        known = roles.list_roles(conn)
        held = roles.matrix(conn)
        counts = roles.account_counts(conn)
    # a permission a role's rows name that no code names any more is listed too, so the page
    # never hides what a role holds
    names = list(PERMISSIONS) + sorted({p for ps in held.values() for p in ps} - set(PERMISSIONS))
    described = [(name, gettext(PERMISSIONS[name]) if name in PERMISSIONS else "")
                 for name in names]
    return render_template("staff/roles.html", roles=known, held=held, counts=counts,
                           permissions=described)
