"""The appliance's local web application: ``create_app(config)``, one blueprint per screen area.

Configuration keys (all optional; the appliance's TOML file supplies what is not given):

``EDGE_CONFIG``
    path of the appliance configuration file (``edge.toml``); default ``$WICKET_CONFIG`` or
    ``/etc/wicket/edge.toml``. Read once, here, never at import time.
``DATABASE``
    path of the appliance database (default: ``database`` from the configuration file).
``HOLDER_KEY``
    the holder key (default: ``holder_key`` from the configuration file).
``SECRET_KEY``
    signs the session cookie; default: a subkey of the holder key, so every worker process and
    every restart agrees on it and no secret is stored anywhere new.
``TESTING``
    Flask's testing flag.
``IDLE_MINUTES``, ``SESSION_HOURS``, ``PASSWORD_MAX_AGE_DAYS``
    session and password lifetimes (default: ``web_idle_minutes``, ``web_session_hours``,
    ``password_max_age_days`` from the configuration file).
``VERDICT_FADE_S``
    seconds a verdict stays on the gate screen and the handheld page (default:
    ``verdict_fade_s`` from the configuration file).
``SESSION_COOKIE_SECURE``
    makes the session cookie Secure even over plain HTTP; over TLS it is Secure anyway.
``WEB_CERT``
    the certificate the pages are served with (default: ``web_cert`` from the configuration
    file), whose fingerprint the dashboard shows.
``HANDHELD_OFFLINE_MAX_AGE_MIN``
    the oldest offline handheld scan admitted on arrival, in minutes; 0 (the default when not
    given): its own entry window (``handheld_offline_max_age_min`` from the configuration file).

Every route needs a staff session unless its view is marked :func:`edge.web.auth.public`, or
its blueprint is registered with :func:`edge.web.auth.own_auth` (a JSON API that checks its own
bearer tokens and takes no cookies, so CSRF does not apply to it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, has_request_context, jsonify, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from edge import config as config_mod
from edge import db as db_mod
from edge.holders import HolderVault
from edge.web import admin, auth, devices, emergency, gate, handheld, helpers, i18n, venue
from edge.web.context import API_PREFIX, SECURITY_HEADERS, EdgeWeb
from edge.web.query import BadArgument
from edge.web.scan_path import ScanPath

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
LANGUAGES = ("en", "zh")


class _Sessions(SecureCookieSessionInterface):
    """Signed-cookie staff sessions for the pages, none for the handheld API: its requests
    carry a device token, never a cookie, and every scan saves the work of opening a session."""

    def __init__(self, api_prefix: str):
        self.api_prefix = api_prefix

    def open_session(self, app, request):
        if request.path.startswith(self.api_prefix):
            return None  # Flask gives the request a null session, which is never saved
        return super().open_session(app, request)

    def get_cookie_secure(self, app) -> bool:
        """Secure whenever the page came over TLS, whatever the configuration says."""
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)


def _derive_secret(holder_key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"wicket web session v1").derive(holder_key.strip().encode("utf-8"))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    config = dict(config or {})
    app = Flask("edge.web", root_path=str(HERE), static_folder="static",
                template_folder="templates")
    needs_file = any(k not in config for k in
                     ("DATABASE", "HOLDER_KEY", "IDLE_MINUTES", "SESSION_HOURS",
                      "PASSWORD_MAX_AGE_DAYS"))
    if needs_file:
        cfg = config_mod.load(config.get("EDGE_CONFIG"))
        config.setdefault("DATABASE", str(cfg.database))
        config.setdefault("HOLDER_KEY", cfg.holder_key)
        config.setdefault("IDLE_MINUTES", cfg.web_idle_minutes)
        config.setdefault("SESSION_HOURS", cfg.web_session_hours)
        config.setdefault("PASSWORD_MAX_AGE_DAYS", cfg.password_max_age_days)
        config.setdefault("HANDHELD_OFFLINE_MAX_AGE_MIN", cfg.handheld_offline_max_age_min)
        config.setdefault("VERDICT_FADE_S", cfg.verdict_fade_s)
        config.setdefault("WEB_CERT", str(cfg.web_cert))
    config.setdefault("VERDICT_FADE_S", config_mod.Config.verdict_fade_s)
    config.setdefault("SECRET_KEY", _derive_secret(config["HOLDER_KEY"]))
    app.config.update(
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,
        SESSION_COOKIE_NAME="wicket_edge",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.config.update(config)
    database = Path(app.config["DATABASE"])
    if not database.exists():
        raise config_mod.ConfigError(f"{database}: no database yet; run `wicket-edge init`")
    db = db_mod.open_db(database)
    try:
        pending = list(db_mod.migrations.pending(db))
    finally:
        db.close()
    if pending:
        raise config_mod.ConfigError(f"{database}: the database needs an upgrade; run "
                                     "`wicket-edge init`")
    app.extensions["wicket"] = EdgeWeb(database, HolderVault(app.config["HOLDER_KEY"]))

    i18n.init_app(app)
    auth.init_app(app)
    helpers.init_app(app)
    _error_pages(app)

    app.session_interface = _Sessions(API_PREFIX)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(devices.bp)
    app.register_blueprint(venue.bp)
    app.register_blueprint(emergency.bp)
    app.register_blueprint(gate.bp)
    handheld.register(app)
    app.wsgi_app = ScanPath(app, app.wsgi_app)

    @app.after_request
    def security_headers(response):
        headers = response.headers
        present = {k.lower() for k in headers.keys()}  # one pass, not one per header
        for name, value in SECURITY_HEADERS:
            if name.lower() not in present:
                headers.add(name, value)
        if request.endpoint != "static" and "cache-control" not in present:
            headers.add("Cache-Control", "no-store")
        return response

    return app


def _error_pages(app: Flask) -> None:
    messages = {400: lambda: _("The request was not understood."),
                403: lambda: _("Your role does not allow this."),
                404: lambda: _("There is no such page."),
                405: lambda: _("This page does not take that kind of request."),
                413: lambda: _("The file is too large.")}

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        message = (e.description if isinstance(e, BadArgument)  # names the argument
                   else messages.get(e.code, lambda: e.description)())
        if auth.wants_json():
            return jsonify({"error": e.name.lower().replace(" ", "_"), "message": message}), \
                e.code
        return render_template("error.html", status=e.code, message=message), e.code

