"""Signing in and out, and the language switch. (The start page: ``cloud/home.py``.)"""

from __future__ import annotations

from flask import g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from cloud.staff import staff as staff_mod
from cloud.web.pages import LANG_COOKIE, LANGUAGES
from cloud.web.web import engine, page_blueprint, public, safe_next, sign_in, sign_out

bp = page_blueprint("auth")


@bp.route("/login", methods=["GET", "POST"])
@public
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
            sign_in(who)
            return redirect(target or url_for("home.home"), 303)
    status = 200 if error is None else 401
    return render_template("login.html", error=error, username=username, next=target), status


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
