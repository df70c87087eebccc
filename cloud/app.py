"""The hub's web application: ``create_app(config)``, one blueprint per area."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from cloud.db import DEFAULT_URL, make_engine


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask("cloud")
    app.config.update(DATABASE_URL=os.environ.get("WICKET_HUB_DB", DEFAULT_URL),
                      MAX_CONTENT_LENGTH=16 * 1024 * 1024)
    app.config.update(config or {})
    app.extensions["db"] = make_engine(app.config["DATABASE_URL"])

    from cloud.api import bp as api_bp
    from cloud.sync_api import bp as sync_bp

    app.register_blueprint(sync_bp)
    app.register_blueprint(api_bp)
    return app
