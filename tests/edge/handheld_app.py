"""A web app serving the handheld blueprints over a real appliance database, for tests."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from flask import Flask

from edge import db as db_mod
from edge.engine import Engine
from edge.holders import HolderVault
from edge.web import handheld


class _Web:
    """One connection and Engine per thread, like the appliance's web service."""

    def __init__(self, database: Path, vault: HolderVault):
        self.database, self.vault = database, vault
        self._local = threading.local()

    def conn(self) -> sqlite3.Connection:
        if getattr(self._local, "conn", None) is None:
            self._local.conn = db_mod.connect(self.database)
        return self._local.conn

    def engine(self) -> Engine:
        if getattr(self._local, "engine", None) is None:
            self._local.engine = Engine(self.conn(), self.vault)
        return self._local.engine


def make_app(database, holder_key: str) -> Flask:
    app = Flask("handheld-test")
    app.config["TESTING"] = True
    app.extensions["wicket"] = _Web(Path(database), HolderVault(holder_key))
    handheld.register(app)
    return app


def from_env() -> Flask:
    """For ``gunicorn 'tests.edge.handheld_app:from_env()'``: the database and holder key
    come from WICKET_TEST_DB and WICKET_TEST_HOLDER_KEY."""
    import os
    return make_app(os.environ["WICKET_TEST_DB"], os.environ["WICKET_TEST_HOLDER_KEY"])
