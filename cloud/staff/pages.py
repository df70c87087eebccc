"""Staff accounts, admins only: the list with each account's state and last sign-in; a new
account with its role; one account's page, where an admin unlocks, disables or enables it,
changes its role, resets its password, ends its sessions, and creates and revokes its API
tokens. Every irreversible step asks first (a confirmation page and a ticked box); a secret
(a temporary password, a new token) is shown once, in the answer to the form, never again.

Anyone signed in may set their own password here, and must after an admin reset it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import abort, current_app, g, render_template, request
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.staff import accounts, passwords, tokens
from cloud.staff import staff as staff_mod
from cloud.staff.roles import list_roles
from cloud.staff.tables import staff
from cloud.web.limits import limited
from cloud.web.web import (
    actor,
    back,
    engine,
    ok,
    page_blueprint,
    permission,
    refused,
    signed_in,
    utc,
)
from cloud.web.words import rule_error
from sync.timeutil import utcnow

bp = page_blueprint("staff", "/staff")
# the steps that ask first: disable ends sessions, reset replaces the password, revoke is for
# good, and ending sessions signs the person out
CONFIRMED = ("disable", "reset", "end_sessions")


def _index(form: dict, status: int = 200):
    with engine().connect() as conn:
        rows = conn.execute(sa.select(staff).order_by(staff.c.username)).all()
        known = list_roles(conn)
    now = utcnow()
    locked = {r.id for r in rows if r.locked_until is not None and utc(r.locked_until) > now}
    return render_template("staff/index.html", staff=rows, locked=locked, roles=known,
                           form=form), status


@bp.get("")
@permission("staff.manage")
def index():
    return _index({})


@bp.post("")
@permission("staff.manage")
def create():
    username = request.form.get("username", "").strip()
    role = request.form.get("role", "")
    password = request.form.get("password", "")
    if password != request.form.get("password_again", ""):
        refused(_("The two passwords differ."))
        return _index({"username": username, "role": role}, 422)
    try:
        with engine().begin() as conn:
            staff_mod.create_staff(conn, username, password, role, actor=actor(),
                                   policy=passwords.policy_from(current_app.config),
                                   chosen=False)
    except staff_mod.StaffError as e:
        refused(rule_error(e))
        return _index({"username": username, "role": role}, 422)
    ok(_("Staff member %(name)s created.", name=username))
    return back("staff.index")


@bp.post("/<int:staff_id>/unlock")
@permission("staff.manage")
def unlock(staff_id: int):
    try:
        with engine().begin() as conn:
            staff_mod.unlock_staff(conn, staff_id, actor=actor())
    except staff_mod.StaffError as e:
        refused(rule_error(e))
    else:
        ok(_("The account is unlocked."))
    return back("staff.index")


def _account_or_404(conn: sa.Connection, staff_id: int) -> sa.Row:
    row = conn.execute(sa.select(staff).where(staff.c.id == staff_id)).first()
    if row is None:
        abort(404)
    return row


@bp.get("/<int:staff_id>")
@permission("staff.manage")
def account(staff_id: int):
    with engine().connect() as conn:
        row = _account_or_404(conn, staff_id)
        token_rows = tokens.list_tokens(conn, staff_id)
        known = list_roles(conn)
        token_roles = tokens.allowed_roles(conn, row.role)
    return render_template("staff/account.html", s=row, tokens=token_rows, roles=known,
                           token_roles=token_roles, now=utcnow())


def _run(staff_id: int, done: str, step) -> object:
    """Run one account rule in its own transaction; its refusal or ``done`` as a message."""
    try:
        with engine().begin() as conn:
            step(conn)
    except HubError as e:
        refused(rule_error(e))
    else:
        ok(done)
    return back("staff.account", staff_id=staff_id)


def _confirmed(staff_id: int, what: str):
    """None when the box was ticked, else the way back to the confirmation page."""
    if request.form.get("confirm") == "yes":
        return None
    refused(_("Tick the box to confirm."))
    return back("staff.confirm", staff_id=staff_id, what=what)


@bp.get("/<int:staff_id>/confirm/<what>")
@permission("staff.manage")
def confirm(staff_id: int, what: str):
    if what not in CONFIRMED:
        abort(404)
    with engine().connect() as conn:
        row = _account_or_404(conn, staff_id)
    return render_template("staff/confirm.html", s=row, what=what)


@bp.post("/<int:staff_id>/disable")
@permission("staff.manage")
def disable(staff_id: int):
    return _confirmed(staff_id, "disable") or _run(
        staff_id, _("The account is disabled: its sessions have ended and it cannot sign in."),
        lambda conn: accounts.disable_staff(conn, staff_id, actor=actor()))


@bp.post("/<int:staff_id>/enable")
@permission("staff.manage")
def enable(staff_id: int):
    return _run(staff_id, _("The account is enabled."),
                lambda conn: accounts.enable_staff(conn, staff_id, actor=actor()))


@bp.post("/<int:staff_id>/role")
@permission("staff.manage")
def change_role(staff_id: int):
    role = request.form.get("role", "")
    return _run(staff_id, _("The role is changed."),
                lambda conn: accounts.change_role(conn, staff_id, role, actor=actor()))


@bp.post("/<int:staff_id>/end-sessions")
@permission("staff.manage")
def end_sessions(staff_id: int):
    return _confirmed(staff_id, "end_sessions") or _run(
        staff_id, _("Every session of this account has ended."),
        lambda conn: accounts.end_all_sessions(conn, staff_id, actor=actor()))


@bp.post("/<int:staff_id>/reset")
@permission("staff.manage")
def reset(staff_id: int):
    if (refusal := _confirmed(staff_id, "reset")) is not None:
        return refusal
    try:
        with engine().begin() as conn:
            row = _account_or_404(conn, staff_id)
            temporary = accounts.reset_password(conn, staff_id, actor=actor())
    except HubError as e:
        refused(rule_error(e))
        return back("staff.account", staff_id=staff_id)
    return render_template("staff/secret_once.html", s=row, secret=temporary, kind="password")


def _expiry(text: str) -> datetime | None:
    """A token's expiry from the form: a UTC date and time, or empty for none."""
    text = text.strip()
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@bp.post("/<int:staff_id>/tokens")
@permission("staff.manage")
def create_token(staff_id: int):
    try:
        expires_at = _expiry(request.form.get("expires_at", ""))
    except ValueError:
        refused(_("The expiry is a date and time (UTC), such as 2027-12-31T18:00."))
        return back("staff.account", staff_id=staff_id)
    chosen = tuple(request.form.getlist("roles"))
    try:
        with engine().begin() as conn:
            row = _account_or_404(conn, staff_id)
            _id, token = tokens.create_token(conn, staff_id, request.form.get("name", ""),
                                           actor=actor(), roles=chosen, expires_at=expires_at)
    except HubError as e:
        refused(rule_error(e))
        return back("staff.account", staff_id=staff_id)
    return render_template("staff/secret_once.html", s=row, secret=token, kind="token")


@bp.get("/<int:staff_id>/tokens/<int:token_id>/revoke")
@permission("staff.manage")
def confirm_revoke(staff_id: int, token_id: int):
    with engine().connect() as conn:
        row = _account_or_404(conn, staff_id)
        token = next((t for t in tokens.list_tokens(conn, staff_id) if t.id == token_id), None)
    if token is None:
        abort(404)
    return render_template("staff/confirm.html", s=row, what="revoke", token=token)


@bp.post("/<int:staff_id>/tokens/<int:token_id>/revoke")
@permission("staff.manage")
def revoke_token(staff_id: int, token_id: int):
    if request.form.get("confirm") != "yes":
        refused(_("Tick the box to confirm."))
        return back("staff.confirm_revoke", staff_id=staff_id, token_id=token_id)
    with engine().connect() as conn:
        if token_id not in {t.id for t in tokens.list_tokens(conn, staff_id)}:
            abort(404)  # another account's token: not through this account's page
    return _run(staff_id, _("The token is revoked."),
                lambda conn: tokens.revoke_token(conn, token_id, actor=actor()))


# -- one's own password ---------------------------------------------------------------------


@bp.get("/me/password")
@signed_in
def own_password():
    return render_template("staff/own_password.html")


@bp.post("/me/password")
@signed_in
@limited("SIGN_IN_LIMIT")
def set_own_password():
    new = request.form.get("password", "")
    if new != request.form.get("password_again", ""):
        refused(_("The two passwords differ."))
        return render_template("staff/own_password.html"), 422
    try:
        with engine().begin() as conn:
            accounts.change_own_password(conn, g.staff.id, request.form.get("current", ""), new,
                                         passwords.policy_from(current_app.config))
    except HubError as e:
        if e.code == "wrong_current_password":  # a guess, counted as at sign-in, for good
            with engine().begin() as conn:
                staff_mod.count_failure(conn, g.staff.id, utcnow())
        refused(rule_error(e))
        return render_template("staff/own_password.html"), 422
    ok(_("Your new password is set."))
    return back("home.home")
