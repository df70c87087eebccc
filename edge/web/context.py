"""What the local web's factory and its blueprints share: the per-thread connection and engine
of the running app, and the few constants both sides need.

A leaf module: it imports no blueprint and not the factory (``edge/web/app.py``), so every
blueprint imports its helpers from here and the factory imports the blueprints, and no two
files of ``edge/web`` import each other.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

from flask import Flask, current_app, g

from edge import db as db_mod
from edge.engine import Engine
from edge.holders import HolderVault

API_PREFIX = "/api/v1/"  # the handheld JSON API (edge/web/handheld.py): bearer tokens, no cookies

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy",
     "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     "frame-ancestors 'none'; form-action 'self'"),
)


class EdgeWeb:
    """What the web app shares between requests: the database path, the vault, and one
    connection and Engine per thread (an Engine keeps lanes and keys in memory)."""

    def __init__(self, database: Path, vault: HolderVault):
        self.database = database
        self.vault = vault
        self._local = threading.local()

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = db_mod.connect(self.database)
        return conn

    def engine(self) -> Engine:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = self._local.engine = Engine(self.conn(), self.vault)
        return engine


def web(app: Flask | None = None) -> EdgeWeb:
    return (app or current_app).extensions["wicket"]


def get_conn() -> sqlite3.Connection:
    """This thread's connection to the appliance database."""
    return web().conn()


def get_engine() -> Engine:
    """This thread's validation engine."""
    return web().engine()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def current_user():
    return g.get("user")
