"""A staff member's own one-time password: set it up (any signed-in role; roles that require
one are sent through the same enrolment at sign-in, ``cloud/web/auth.py``), new recovery
codes, and an administrator removing someone's (a lost phone)."""

from __future__ import annotations

from flask import g, render_template, request
from flask_babel import gettext as _

from cloud.staff import totp
from cloud.web.limits import limited
from cloud.web.web import (
    actor,
    back,
    engine,
    ok,
    page_blueprint,
    permission,
    qr_svg,
    refused,
    signed_in,
)

bp = page_blueprint("two_step", "/account/two-step")


@bp.route("", methods=["GET", "POST"])
@signed_in
def enrol():
    with engine().begin() as conn:
        if totp.enrolled(conn, g.staff.id):
            return render_template("staff/totp_on.html")
        secret = totp.pending_secret(conn, g.staff.id) or totp.start_enrolment(conn,
                                                                                g.staff.id)
    error = None
    if request.method == "POST":
        try:
            with engine().begin() as conn:
                codes = totp.confirm_enrolment(conn, g.staff.id, request.form.get("code", ""),
                                               actor=actor())
        except totp.TotpError:
            error = _("That code is not the one the app shows now: check the phone's clock and "
                      "try the next code.")
        else:
            return render_template("staff/recovery_codes.html", codes=codes, target="/")
    return render_template("staff/totp_enrol.html", error=error, secret=secret,
                           qr=qr_svg(totp.provisioning_uri(secret, g.staff.username)),
                           action="/account/two-step"), (422 if error else 200)


@bp.post("/recovery-codes")
@signed_in
@limited("SIGN_IN_LIMIT")
def recovery_codes():
    """New recovery codes, only with a code of the account's own: a session alone (a browser
    left open) must not mint a lasting way past the second step."""
    with engine().connect() as conn:
        if not totp.enrolled(conn, g.staff.id):
            return back("two_step.enrol")
    try:
        totp.second_step(engine(), g.staff, request.form.get("code", ""))
    except totp.TotpError:
        refused(_("Wrong or already used code: new recovery codes need a code from the app."))
        return render_template("staff/totp_on.html"), 422
    with engine().begin() as conn:
        codes = totp.new_recovery_codes(conn, g.staff.id, actor=actor())
    return render_template("staff/recovery_codes.html", codes=codes, target="/")


@bp.post("/<int:staff_id>/remove")
@permission("staff.manage")
def remove(staff_id: int):
    with engine().begin() as conn:
        if not totp.enrolled(conn, staff_id):
            refused(_("This account has no one-time password."))
            return back("staff.index")
        totp.remove(conn, staff_id, actor=actor())
    ok(_("The one-time password is removed: the account sets up a new one at its next "
         "sign-in if its role requires one."))
    return back("staff.index")
