"""The hub's web application: ``create_app(config)``, one blueprint per area.

Settings, from ``config`` or else the environment: ``DATABASE_URL`` ($WICKET_HUB_DB),
``SECRET_KEY`` (see cloud/secret.py: $WICKET_HUB_SECRET or an owner-only file),
``HUB_PUBLIC_URL`` ($WICKET_HUB_PUBLIC_URL, the address appliances reach the hub at, put in
enrollment QR codes; default: the address the page was asked for), ``SESSION_COOKIE_SECURE``
($WICKET_HUB_SECURE_COOKIES=1 behind TLS).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from cloud.db import DEFAULT_URL, make_engine
from cloud.secret import hub_secret


def instance_path() -> str:
    """Where the hub keeps files that are not in the database ($WICKET_HUB_INSTANCE, else
    Flask's instance folder)."""
    return os.environ.get("WICKET_HUB_INSTANCE") or Flask("cloud").instance_path


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask("cloud", instance_path=os.environ.get("WICKET_HUB_INSTANCE") or None)
    app.config.update(DATABASE_URL=os.environ.get("WICKET_HUB_DB", DEFAULT_URL),
                      MAX_CONTENT_LENGTH=16 * 1024 * 1024,
                      HUB_PUBLIC_URL=os.environ.get("WICKET_HUB_PUBLIC_URL") or None,
                      SESSION_COOKIE_SECURE=os.environ.get("WICKET_HUB_SECURE_COOKIES") == "1")
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = hub_secret(app.config["DATABASE_URL"], app.instance_path)
    app.extensions["db"] = make_engine(app.config["DATABASE_URL"])

    from cloud.api import bp as api_bp
    from cloud.pages import init_pages
    from cloud.sync_api import bp as sync_bp

    app.register_blueprint(sync_bp)
    app.register_blueprint(api_bp)
    init_pages(app)
    return app
