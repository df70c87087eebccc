"""Staff accounts: the list, a new account with its role, unlocking a locked account. Admins
only."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request
from flask_babel import gettext as _

from cloud.staff import staff as staff_mod
from cloud.staff.tables import staff
from cloud.web.web import actor, back, engine, ok, page_blueprint, refused, roles, utc
from cloud.web.words import rule_error
from sync.timeutil import utcnow

bp = page_blueprint("staff", "/staff")


def _index(form: dict, status: int = 200):
    with engine().connect() as conn:
        rows = conn.execute(sa.select(staff.c.id, staff.c.username, staff.c.role,
                                      staff.c.failed_logins, staff.c.locked_until,
                                      staff.c.disabled, staff.c.created_at)
                            .order_by(staff.c.username)).all()
    now = utcnow()
    locked = {r.id for r in rows if r.locked_until is not None and utc(r.locked_until) > now}
    return render_template("staff/index.html", staff=rows, locked=locked, roles=staff_mod.ROLES,
                           form=form), status


@bp.get("")
@roles()
def index():
    return _index({})


@bp.post("")
@roles()
def create():
    username = request.form.get("username", "").strip()
    role = request.form.get("role", "")
    password = request.form.get("password", "")
    if password != request.form.get("password_again", ""):
        refused(_("The two passwords differ."))
        return _index({"username": username, "role": role}, 422)
    try:
        with engine().begin() as conn:
            staff_mod.create_staff(conn, username, password, role, actor=actor())
    except staff_mod.StaffError as e:
        refused(rule_error(e))
        return _index({"username": username, "role": role}, 422)
    ok(_("Staff member %(name)s created.", name=username))
    return back("staff.index")


@bp.post("/<int:staff_id>/unlock")
@roles()
def unlock(staff_id: int):
    try:
        with engine().begin() as conn:
            staff_mod.unlock_staff(conn, staff_id, actor=actor())
    except staff_mod.StaffError as e:
        refused(rule_error(e))
    else:
        ok(_("The account is unlocked."))
    return back("staff.index")
