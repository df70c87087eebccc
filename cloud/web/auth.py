"""Signing in and out, and the language switch. (The start page: ``cloud/home.py``.)

Sign-in is the password, then, for an account with a one-time password or a role that
requires one (:mod:`cloud.staff.totp`), a code from the authenticator app or a recovery code;
an account of such a role without one enrols on the way in. Between the steps the browser's
signed cookie carries only who passed the password and when, for :data:`STEP_TIME`; no
session exists until the last step.
"""

from __future__ import annotations

import time

from flask import (
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from cloud.staff import passwords, totp
from cloud.staff import staff as staff_mod
from cloud.web.limits import limited
from cloud.web.pages import LANG_COOKIE, LANGUAGES
from cloud.web.web import engine, page_blueprint, public, qr_svg, safe_next, sign_in, sign_out
from cloud.web.words import rule_error

STEP_TIME = 300  # seconds from the password to the code

bp = page_blueprint("auth")


@bp.route("/login", methods=["GET", "POST"])
@public
@limited("SIGN_IN_LIMIT")
def login():
    target = safe_next(request.values.get("next"))
    if g.staff is not None and request.method == "GET":
        return redirect(target or url_for("home.home"), 303)
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        try:
            who = staff_mod.login(engine(), username, password)
        except staff_mod.StaffError:
            # one message for a wrong password, an unknown user and a locked account, so
            # that nobody learns from it whether an account exists
            error = _("Wrong username or password, or the account is locked after too many "
                      "wrong passwords (it opens again after 15 minutes, or when an admin "
                      "unlocks it).")
        else:
            return _after_password(who, target)
    status = 200 if error is None else 401
    return render_template("login.html", error=error, username=username, next=target), status


def _after_password(who: staff_mod.Staff, target: str | None):
    with engine().connect() as conn:
        has_code = totp.enrolled(conn, who.id)
        renew = passwords.must_change(conn, who.id, passwords.policy_from(current_app.config))
        needs_code = has_code or totp.required(conn, who.role,
                                               current_app.config.get("TOTP_REQUIRED_ROLES"))
    if not needs_code and not renew:
        sign_in(who)
        return redirect(target or url_for("home.home"), 303)
    sign_out()  # a session this browser had ends here, not only its cookie
    session["pending"] = {"id": who.id, "username": who.username, "role": who.role,
                          "since": int(time.time()), "next": target, "renew": renew,
                          "code_done": not needs_code}
    step = "auth.second_step" if has_code else "auth.enrol" if needs_code else "auth.renew"
    return redirect(url_for(step), 303)


def _pending() -> staff_mod.Staff | None:
    """Who passed the password step in this browser, if it was recent enough."""
    pending = session.get("pending")
    if not isinstance(pending, dict) or time.time() - pending.get("since", 0) > STEP_TIME:
        session.pop("pending", None)
        return None
    return staff_mod.Staff(pending["id"], pending["username"], pending["role"])


def _finish(who: staff_mod.Staff):
    """After the code step: on to a new password if the account needs one, else signed in."""
    pending = session["pending"]
    if pending.get("renew"):
        session["pending"] = {**pending, "code_done": True}
        return url_for("auth.renew")
    sign_in(who)  # clears the pending step with the rest of the old cookie
    return safe_next(pending.get("next")) or url_for("home.home")


@bp.route("/login/password", methods=["GET", "POST"])
@public
@limited("SIGN_IN_LIMIT")
def renew():
    """A new password before the first session: the old one was set by an administrator or
    is older than the policy's maximum age."""
    who = _pending()
    if who is None or not session["pending"].get("code_done"):
        return redirect(url_for("auth.login"), 303)
    with engine().connect() as conn:
        due = passwords.must_change(conn, who.id, passwords.policy_from(current_app.config))
    if not due:  # renewed already: a copy of this step's cookie sets no password again
        session.pop("pending", None)
        return redirect(url_for("auth.login"), 303)
    error = None
    if request.method == "POST":
        new = request.form.get("password", "")
        if new != request.form.get("password_again", ""):
            error = _("The two passwords differ.")
        else:
            try:
                with engine().begin() as conn:
                    passwords.renew_password(conn, who.id, new,
                                             passwords.policy_from(current_app.config))
            except staff_mod.StaffError as e:
                error = rule_error(e)
            else:
                target = safe_next(session["pending"].get("next"))
                sign_in(who)
                return redirect(target or url_for("home.home"), 303)
    return render_template("login_password.html", error=error), (422 if error else 200)


@bp.route("/login/code", methods=["GET", "POST"])
@public
@limited("SIGN_IN_LIMIT")
def second_step():
    who = _pending()
    if who is None:
        return redirect(url_for("auth.login"), 303)
    error = None
    if request.method == "POST":
        try:
            how = totp.second_step(engine(), who, request.form.get("code", ""))
        except totp.TotpError:
            error = _("Wrong or already used code, or the account is locked after too many "
                      "wrong passwords and codes.")
        else:
            target = _finish(who)
            if how == "recovery":
                flash(_("You signed in with a recovery code, which is now used up. If your "
                        "phone is lost, ask an administrator to reset your one-time "
                        "password."), "warning")
            return redirect(target, 303)
    return render_template("login_code.html", error=error), (401 if error else 200)


@bp.route("/login/enrol", methods=["GET", "POST"])
@public
@limited("SIGN_IN_LIMIT")
def enrol():
    """The enrolment an account of a role that requires a second step goes through before
    its first session."""
    who = _pending()
    if who is None:
        return redirect(url_for("auth.login"), 303)
    error = None
    with engine().begin() as conn:
        if totp.enrolled(conn, who.id):
            return redirect(url_for("auth.second_step"), 303)
        secret = totp.pending_secret(conn, who.id) or totp.start_enrolment(conn, who.id)
    if request.method == "POST":
        try:
            with engine().begin() as conn:
                codes = totp.confirm_enrolment(conn, who.id, request.form.get("code", ""),
                                               actor=f"staff:{who.id}")
        except totp.TotpError:
            error = _("That code is not the one the app shows now: check the phone's clock and "
                      "try the next code.")
        else:
            target = _finish(who)
            return render_template("staff/recovery_codes.html", codes=codes, target=target)
    return render_template("staff/totp_enrol.html", error=error, secret=secret,
                           qr=qr_svg(totp.provisioning_uri(secret, who.username)),
                           action=url_for("auth.enrol")), (422 if error else 200)


@bp.post("/logout")
@public
def logout():
    sign_out()
    return redirect(url_for("auth.login"), 303)


@bp.post("/lang")
@public
def set_language():
    lang = request.form.get("lang", "")
    resp = make_response(redirect(safe_next(request.form.get("next")) or url_for("home.home"),
                                  303))
    if lang in LANGUAGES:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="Lax",
                        secure=request.is_secure)
    return resp
