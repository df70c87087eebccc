"""Key and staff pages (admins only): create, activate and retire keys; create accounts with a
role — on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.core.trust import signing_keys
from cloud.staff.tables import staff
from tests.cloud.pagekit import build_hub, post, sign_in, text


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    yield h
    h.engine.dispose()


def key_states(hub) -> dict[int, str]:
    with hub.engine.connect() as conn:
        return dict(conn.execute(sa.select(signing_keys.c.key_id, signing_keys.c.state)).all())


def test_keys_are_published_then_activated_then_retired(hub):
    admin = hub.client("admin")
    assert key_states(hub) == {1: "active"}
    r = post(admin, "/keys", page="/keys")
    assert "Key 2 created and published" in text(admin.get(r.headers["Location"]))
    assert key_states(hub) == {1: "active", 2: "published"}
    post(admin, "/keys/2/activate", page="/keys")
    assert key_states(hub) == {1: "published", 2: "active"}
    r = post(admin, "/keys/2/retire", {"confirm": "yes"}, page="/keys")
    assert "is the active key" in text(admin.get(r.headers["Location"]))
    assert "Retire key 1?" in text(admin.get("/keys/1/retire"))
    r = post(admin, "/keys/1/retire", page="/keys")
    assert "Tick the box" in text(admin.get(r.headers["Location"]))
    assert key_states(hub)[1] == "published"
    post(admin, "/keys/1/retire", {"confirm": "yes"}, page="/keys")
    assert key_states(hub) == {1: "retired", 2: "active"}
    assert hub.client("sales").get("/keys").status_code == 403


def test_admin_creates_staff_with_a_role_and_the_policy_is_shown(hub):
    admin = hub.client("admin")
    r = post(admin, "/staff", {"username": "li", "role": "ops", "password": "short",
                               "password_again": "short"}, page="/staff")
    assert r.status_code == 422 and "at least 10 characters" in text(r)
    r = post(admin, "/staff", {"username": "li", "role": "ops", "password": "a long password",
                               "password_again": "another one"}, page="/staff")
    assert r.status_code == 422 and "The two passwords differ." in text(r)
    r = post(admin, "/staff", {"username": "li", "role": "ops", "password": "a long password",
                               "password_again": "a long password"}, page="/staff")
    assert r.status_code == 303
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(staff.c.role).where(staff.c.username == "li")
                            ).scalar() == "ops"
    newcomer = hub.app.test_client()
    # the admin chose it: the newcomer chooses their own before the first session
    assert sign_in(newcomer, "li", "a long password").headers["Location"].endswith(
        "/login/password")
    assert newcomer.get("/conflicts").status_code == 303
    r = post(newcomer, "/login/password", {"password": "Quiet-harbour-lamp-77",
                                           "password_again": "Quiet-harbour-lamp-77"},
             page="/login/password")
    assert r.status_code == 303
    assert newcomer.get("/conflicts").status_code == 200
    assert newcomer.get("/staff").status_code == 403
