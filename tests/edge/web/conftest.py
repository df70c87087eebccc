"""Fixtures for the appliance's web pages: a configured appliance holding a sample venue whose
first session is open now (the pages decide at the real current time), and staff accounts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from edge import config as config_mod
from edge import db as db_mod
from edge import staff
from edge.allowlist import apply_changes
from edge.holders import HolderVault, generate_holder_key
from edge.web.app import create_app
from sync import sample
from sync.changes import parse_change
from sync.timeutil import utcnow

PASSWORDS = {"admin": "Harbour-lamp-2026", "supervisor": "Quiet-river-77", "gate": "Green-field-31"}


@pytest.fixture(scope="session")
def live_venue(hub_key):
    """The sample venue built around now: session 1 is open for the next hour or more."""
    return sample.build(hub_key, utcnow() + timedelta(minutes=30), tickets=40)


def make_appliance(directory, venue) -> dict:
    """An initialised appliance in ``directory``: config file, database, the venue's allowlist."""
    directory.mkdir(parents=True, exist_ok=True)
    key = generate_holder_key()
    cfg_path = directory / "edge.toml"
    config_mod.write_new(cfg_path, {"holder_key": key, "database": "edge.db"})
    db_path = directory / "edge.db"
    db_mod.migrate(db_mod.open_db(db_path))
    conn = db_mod.connect(db_path)
    apply_changes(conn, HolderVault(key), [parse_change(c) for c in venue.changes])
    usb = directory / "usb"
    usb.mkdir()
    return {"config": cfg_path, "db": db_path, "holder_key": key, "conn": conn, "venue": venue,
            "usb": usb}


def app_for(appliance: dict):
    return create_app({"EDGE_CONFIG": str(appliance["config"]), "TESTING": True,
                       "USB_ROOTS": [str(appliance["usb"])]})


@pytest.fixture
def appliance(tmp_path, live_venue):
    a = make_appliance(tmp_path / "box", live_venue)
    yield a
    a["conn"].close()


@pytest.fixture
def app(appliance):
    return app_for(appliance)


@pytest.fixture
def users(appliance):
    """One account per role, passwords already chosen (no forced change)."""
    conn = appliance["conn"]
    return {role: staff.create_user(conn, role, PASSWORDS[role], role, "test")
            for role in staff.ROLES}


def csrf_of(html: bytes | str) -> str:
    text = html.decode() if isinstance(html, bytes) else html
    return re.search(r'name="csrf-token" content="([^"]+)"', text).group(1)


class Browser:
    """A test client that keeps the page's CSRF token, as a browser keeps the page."""

    def __init__(self, client):
        self.client = client
        self.csrf = None

    def get(self, url, **kw):
        r = self.client.get(url, **kw)
        if r.mimetype == "text/html" and b"csrf-token" in r.data:
            self.csrf = csrf_of(r.data)
        return r

    def post(self, url, data=None, **kw):
        if self.csrf is None:
            self.get("/login")
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf)
        return self.client.post(url, data=data, **kw)

    def post_json(self, url, body):
        if self.csrf is None:
            self.get("/login")
        return self.client.post(url, json=body, headers={"X-CSRF-Token": self.csrf,
                                                         "X-Requested-With": "fetch"})

    def login(self, username, password):
        self.get("/login")
        r = self.post("/login", {"username": username, "password": password})
        self.get("/password")  # a fresh page: the session's new CSRF token
        return r


@pytest.fixture
def browser(app):
    return Browser(app.test_client())


@pytest.fixture
def as_role(app, users):
    """as_role('admin') -> a Browser logged in with that role."""
    def make(role: str) -> Browser:
        b = Browser(app.test_client())
        r = b.login(role, PASSWORDS[role])
        assert r.status_code == 302, r.data
        return b
    return make
