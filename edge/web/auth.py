"""Staff sessions, roles, CSRF and the first-run flow, for every page of the local web.

Default deny: a request reaches a view only with a live staff session, unless the view is
marked :func:`public` (login, first run) or its blueprint authenticates itself
(:func:`own_auth`). A session lives in the database (the browser's signed cookie carries a
random token; the table its SHA-256) and ends after ``IDLE_MINUTES`` without a request or
``SESSION_HOURS`` after the login, at logout, at a password change and when the account is
disabled. Every state-changing request carries the session's CSRF token, as a form field or
an ``X-CSRF-Token`` header. Until an admin exists every page leads to first run; a password
past its age leads to the password page and nowhere else.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import refresh

from edge import staff as staff_mod
from edge.db import immediate
from edge.web.context import API_PREFIX, get_conn, token_hash
from edge.web.i18n import LANGUAGES
from sync.timeutil import from_iso, to_iso, utcnow
from sync.websafe import local_path

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

SEEN_EVERY = timedelta(seconds=30)  # how often a busy session's last-seen time is written
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def public(view: Callable) -> Callable:
    """Mark a view as reachable without a staff session (login, first run)."""
    view._wicket_public = True
    return view


def require(role: str) -> Callable:
    """The least role a view needs; every other view needs only a login (any role)."""
    if role not in staff_mod.RANK:
        raise ValueError(f"unknown role {role!r}")

    def mark(view: Callable) -> Callable:
        view._wicket_role = role
        return view
    return mark


def own_auth(app: Flask, blueprint: Blueprint) -> None:
    """Register ``blueprint`` as authenticating its own requests (bearer tokens, no cookies):
    staff sessions and CSRF checks are not applied to its routes. Call before registering it."""
    app.extensions.setdefault("wicket_own_auth", set()).add(blueprint.name)


def csrf_token() -> str:
    token = session.get("csrf")
    if token is None:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def wants_json() -> bool:
    return (request.path.endswith(".json")
            or request.path.startswith(API_PREFIX)  # the API's own refusals (404, 405) too
            or request.is_json
            or request.accept_mimetypes.best == "application/json"
            or request.headers.get("X-Requested-With") == "fetch")


def _refuse(status: int, code: str, message: str):
    if wants_json():
        return jsonify({"error": code, "message": message}), status
    if status == 401:
        if code == "expired":
            flash(message, "warning")
        return redirect(url_for("auth.login", next=request.full_path
                                if request.method == "GET" else None))
    abort(status)


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(csrf_token=csrf_token)
    app.before_request(_guard)


def _guard():
    endpoint = request.endpoint
    if endpoint is None:  # no such route: Flask answers 404 or 405
        return None
    blueprint = request.blueprint
    if blueprint in current_app.extensions.get("wicket_own_auth", ()):
        return None
    if endpoint == "static":
        return None
    if request.method in UNSAFE_METHODS:
        sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
        expected = session.get("csrf") or ""
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            log.warning("refused %s %s: missing or wrong CSRF token", request.method,
                        request.path)
            if wants_json():
                return jsonify({"error": "csrf", "message": _(
                    "This form has expired: reload the page and try again.")}), 400
            return render_template("error.html", status=400, message=_(
                "This form has expired: reload the page and try again.")), 400
    view = current_app.view_functions.get(endpoint)
    conn = get_conn()
    if getattr(view, "_wicket_public", False):
        return None
    if not staff_mod.has_admin(conn):
        if wants_json():
            return jsonify({"error": "first_run",
                            "message": _("This appliance has no admin yet.")}), 401
        return redirect(url_for("auth.first_run"))
    user = _session_user(conn)
    if user is None:
        if session.pop("sid", None) is not None:
            return _refuse(401, "expired", _("Your session has ended: log in again."))
        return _refuse(401, "login", _("Log in first."))
    g.user = user
    refresh()
    if user.must_change_password and endpoint not in ("auth.password", "auth.logout"):
        if wants_json():
            return jsonify({"error": "password_expired",
                            "message": _("Choose a new password first.")}), 403
        return redirect(url_for("auth.password"))
    role = getattr(view, "_wicket_role", "gate")
    if not user.may(role):
        log.warning("refused %s %s to %s (role %s, needs %s)", request.method, request.path,
                    user.username, user.role, role)
        return _refuse(403, "forbidden", _("Your role does not allow this."))
    return None


def _session_user(conn) -> staff_mod.StaffUser | None:
    token = session.get("sid")
    if not token:
        return None
    digest = token_hash(token)
    row = conn.execute("SELECT staff_id, created_at, seen_at FROM web_sessions "
                       "WHERE token_hash = ?", (digest,)).fetchone()
    if row is None:
        return None
    staff_id, created_at, seen_at = row
    now = utcnow()
    cfg = current_app.config
    if (now - from_iso(seen_at) > timedelta(minutes=cfg["IDLE_MINUTES"])
            or now - from_iso(created_at) > timedelta(hours=cfg["SESSION_HOURS"])):
        conn.execute("DELETE FROM web_sessions WHERE token_hash = ?", (digest,))
        return None
    user = staff_mod.get_user(conn, staff_id, cfg["PASSWORD_MAX_AGE_DAYS"], now)
    if user is None:
        conn.execute("DELETE FROM web_sessions WHERE staff_id = ?", (staff_id,))
        return None
    if now - from_iso(seen_at) > SEEN_EVERY:
        conn.execute("UPDATE web_sessions SET seen_at = ? WHERE token_hash = ?",
                     (to_iso(now), digest))
    return user


def start_session(conn, user: staff_mod.StaffUser) -> None:
    """A fresh session (and CSRF token) for ``user``: a login never reuses the cookie's
    earlier identity, so a planted session id is worthless."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    token = secrets.token_urlsafe(32)
    now = to_iso(utcnow())
    with immediate(conn):
        # sessions that ended by time are of no use to anyone
        conn.execute("DELETE FROM web_sessions WHERE created_at < ?", (to_iso(
            utcnow() - timedelta(hours=current_app.config["SESSION_HOURS"])),))
        conn.execute("INSERT INTO web_sessions (token_hash, staff_id, created_at, seen_at) "
                     "VALUES (?, ?, ?, ?)", (token_hash(token), user.id, now, now))
    session["sid"] = token
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = False


def end_sessions(conn, staff_id: int, keep: str | None = None) -> None:
    """End every session of an account (but ``keep``, the current one, if given)."""
    conn.execute("DELETE FROM web_sessions WHERE staff_id = ? AND token_hash IS NOT ?",
                 (staff_id, token_hash(keep) if keep else None))


def safe_next(target: str | None) -> str:
    """Where to send the browser after a login or a language switch: ``target`` if it is a
    path on this appliance (see :func:`sync.websafe.local_path`), else the home page."""
    return local_path(target) or url_for("admin.home")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    conn = get_conn()
    if not staff_mod.has_admin(conn):
        return redirect(url_for("auth.first_run"))
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        try:
            user = staff_mod.login(conn, username, password,
                                   current_app.config["PASSWORD_MAX_AGE_DAYS"])
        except staff_mod.StaffError as e:
            log.info("login refused for an account (%s) from %s", e.code, request.remote_addr)
            # one answer for a wrong password, an unknown user and a locked account, so that
            # nobody learns from it whether an account exists or is locked
            error = _("Wrong username or password, or the account is locked after too many "
                      "wrong passwords (it opens again after 15 minutes, or when an admin "
                      "unlocks it).")
        else:
            start_session(conn, user)
            log.info("staff %s logged in from %s", user.username, request.remote_addr)
            if user.must_change_password:
                return redirect(url_for("auth.password"))
            return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.route("/first-run", methods=["GET", "POST"])
@public
def first_run():
    """With no admin yet, the first visitor sets the admin account, proving with the setup
    code the web process printed at start (when it printed one) that they are at the box."""
    conn = get_conn()
    if staff_mod.has_admin(conn):
        return redirect(url_for("auth.login"))
    needs_code = setup_code_hash(conn) is not None
    errors: list[str] = []
    if request.method == "POST":
        username = request.form.get("username", "").strip() or "admin"
        password = request.form.get("password", "")
        if needs_code and not check_setup_code(conn, request.form.get("setup_code", "")):
            errors.append(_("The setup code is wrong: it is printed by `wicket-edge web` when "
                            "it starts."))
        elif password != request.form.get("password2", ""):
            errors.append(_("The two passwords differ."))
        else:
            try:
                staff_id = staff_mod.first_admin(conn, username, password,
                                                 lang=session.get("lang"))
            except staff_mod.StaffError as e:
                errors.append(policy_message(e))
            else:
                conn.execute("DELETE FROM appliance_state WHERE key = 'web_setup_code'")
                user = staff_mod.get_user(conn, staff_id)
                start_session(conn, user)
                flash(_("The admin account is ready."), "ok")
                return redirect(url_for("admin.home"))
    return render_template("first_run.html", errors=errors, needs_code=needs_code), \
        (400 if errors else 200)


def setup_code_hash(conn) -> str | None:
    row = conn.execute("SELECT value FROM appliance_state WHERE key = 'web_setup_code'"
                       ).fetchone()
    return row[0] if row else None


def new_setup_code(conn) -> str:
    """A one-time code for first run, stored hashed; printed by ``wicket-edge web``."""
    code = "-".join(secrets.token_hex(2).upper() for _ in range(3))
    conn.execute("INSERT INTO appliance_state (key, value) VALUES ('web_setup_code', ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                 (token_hash(code),))
    return code


def check_setup_code(conn, code: str) -> bool:
    stored = setup_code_hash(conn)
    given = code.strip().upper()
    return stored is not None and given.isascii() and hmac.compare_digest(
        token_hash(given), stored)


def policy_message(e: staff_mod.StaffError) -> str:
    """The policy's refusal in the page's language."""
    if e.code == "weak_password":
        return password_words(e.detail, e.params)
    messages = {
        "bad_username": _("A username is 1 to 64 letters, digits or . _ @ -"),
        "exists": _("That account already exists."),
        "bad_login": _("The current password is wrong."),
        "last_admin": _("The last admin cannot be demoted or disabled."),
        "bad_role": _("Unknown role."),
        "not_found": _("No such account."),
    }
    return messages.get(e.code, str(e))


def password_words(detail: str | None, params: dict) -> str:
    """Why the shared policy (sync/passwords.py) refused a password, in the page's language."""
    if detail == "password_too_short":
        return _("The password is too weak: it needs at least %(n)d characters.", n=params["min"])
    if detail == "password_too_long":
        return _("The password is too long: at most %(n)d characters.", n=params["max"])
    if detail == "password_has_username":
        return _("The password is too weak: it contains the username.")
    return _("The password is too weak: it is too easy to guess. Choose a longer one, for "
             "example a few unrelated words.")


@bp.route("/logout", methods=["POST"])
def logout():
    conn = get_conn()
    token = session.get("sid")
    if token:
        conn.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash(token),))
    lang = session.get("lang") or (g.user.lang if g.get("user") else None)
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
def password():
    conn = get_conn()
    errors: list[str] = []
    if request.method == "POST":
        new = request.form.get("new", "")
        if new != request.form.get("new2", ""):
            errors.append(_("The two passwords differ."))
        else:
            try:
                staff_mod.change_password(conn, g.user, request.form.get("current", ""), new)
            except staff_mod.StaffError as e:
                errors.append(policy_message(e))
            else:
                end_sessions(conn, g.user.id, keep=session.get("sid"))
                flash(_("Password changed."), "ok")
                return redirect(url_for("admin.home"))
    return render_template("password.html", errors=errors), (400 if errors else 200)


@bp.route("/language", methods=["POST"])
@public
def language():
    """Switch the page language: stored with the account when logged in, else in the cookie."""
    lang = request.form.get("lang", "")
    if lang not in LANGUAGES:
        abort(400)
    session["lang"] = lang
    user = _session_user(get_conn()) if session.get("sid") else None
    if user is not None:
        staff_mod.set_language(get_conn(), user.id, lang)
    return redirect(safe_next(request.form.get("next")))
