"""Helpers for the staff-page tests: a hub app on a real database with one account per role,
signing in through the login form, and the CSRF token read from the page as a browser would."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import timedelta
from unittest import mock

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from cloud.app import create_app
from cloud.catalog.events import create_event
from cloud.catalog.venues import add_gate, add_zone, create_venue
from cloud.core.db import init_db
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.staff import staff as staff_module
from cloud.staff.staff import create_staff, hash_password
from sync.timeutil import utcnow

PASSWORD = "correct horse battery"
SECRET = "s" * 48
SEATS = ("level,zone,row,number,category\n"
         + "".join(f"L1,A,A1,{n},std\n" for n in range(1, 6))
         + "".join(f"L1,B,B1,{n},std\n" for n in range(1, 4)))
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Hub:
    app: Flask
    engine: sa.Engine
    venue: int
    session: int
    staff: dict[str, int] = field(default_factory=dict)

    def client(self, role: str | None = None) -> FlaskClient:
        c = self.app.test_client()
        if role is not None:
            sign_in(c, f"{role}-user")
        return c


# The accounts' password hashed once per test process: a hash takes a tenth of a second or more
# on purpose (scrypt, cloud/staff/staff.py), and each hub the page tests build has three
# accounts, all with this password; signing in still checks it in full.
_hashed = functools.cache(hash_password)


def build_hub(url: str) -> Hub:
    init_db(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True, "SECRET_KEY": SECRET})
    engine = app.extensions["db"]
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre", "1 Olympic Avenue",
                             "Asia/Shanghai")
        add_zone(conn, venue, "A", "North Stand")
        add_zone(conn, venue, "B", "South Stand")
        add_gate(conn, venue, "G1", "Gate 1", ["A"])
        assert import_seats_csv(conn, venue, SEATS).ok
        start = utcnow() + timedelta(days=1)
        session = create_session(conn, create_event(conn, "GAMES", "The Games"), venue,
                                 "Final", start, start + timedelta(hours=2))
        with mock.patch.object(staff_module, "hash_password", _hashed):
            staff = {role: create_staff(conn, f"{role}-user", PASSWORD, role, actor="test")
                     for role in ("admin", "sales", "ops")}
    return Hub(app, engine, venue, session, staff)


def csrf(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    m = _CSRF.search(page)
    assert m, f"no CSRF field on {path}"
    return m.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD):
    r = client.post("/login", data={"username": username, "password": password,
                                    "csrf_token": csrf(client)})
    assert r.status_code == 303, r.get_data(as_text=True)
    return r


def portal_client(app, username: str, password: str = PASSWORD) -> FlaskClient:
    """A client signed in to the partner portal (``/partner/``) as this portal user."""
    client = app.test_client()
    r = client.post("/partner/sign-in", data={"username": username, "password": password,
                                              "csrf_token": csrf(client, "/partner/sign-in")})
    assert r.status_code == 303, r.get_data(as_text=True)
    return client


def post(client: FlaskClient, path: str, data: dict | None = None, page: str | None = None,
         **kw):
    """A form POST with the CSRF token of the page it is sent from."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf(client, page or "/login")},
                       **kw)


def text(response) -> str:
    return response.get_data(as_text=True)
