"""The waiting room's public JSON API on both databases, on a clock the test moves: entering,
coming back with the token, polling until admitted, every field checked, and entering
limited per client address."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloud.app import create_app
from cloud.storefront import queue_api
from cloud.storefront import waiting_room as wr
from tests.cloud.orderkit import NOW, build


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self):
        return self.now


def make_shop(hub_url, **settings):
    h = build(hub_url)
    h.app = create_app({"DATABASE_URL": hub_url, "TESTING": True, "RATELIMIT_ENABLED": False,
                        "WAITING_ROOM_RATE": 1, "WAITING_ROOM_BURST": 1, **settings})
    h.clock = h.app.extensions[queue_api.EXTENSION].clock = Clock()
    h.client = h.app.test_client()
    h.url = f"/api/public/v1/sessions/{h.session}/queue"
    return h


@pytest.fixture
def shop(hub_url, key_store):
    h = make_shop(hub_url)
    yield h
    h.app.extensions["db"].dispose()
    h.engine.dispose()


def test_a_visitor_enters_waits_and_is_let_in_with_a_pass(shop):
    first = shop.client.post(shop.url)
    assert first.status_code == 201 and first.headers["Cache-Control"] == "no-store"
    assert first.get_json()["admitted"] and first.get_json()["pass"].startswith("wp1.")
    second = shop.client.post(shop.url, json={})
    body = second.get_json()
    assert second.status_code == 201
    assert {k: body[k] for k in ("number", "ahead", "estimate_s", "admitted", "pass")} == {
        "number": 2, "ahead": 0, "estimate_s": 1, "admitted": False, "pass": None}
    token = body["token"]
    # coming back with the token keeps the place (200, the same number and token)
    again = shop.client.post(shop.url, json={"token": token})
    assert again.status_code == 200 and (again.get_json()["number"], again.get_json()["token"]
                                         ) == (2, token)
    polled = shop.client.get(shop.url, query_string={"token": token})
    assert polled.status_code == 200 and not polled.get_json()["admitted"]
    shop.clock.now = NOW + timedelta(seconds=1)
    polled = shop.client.get(shop.url, query_string={"token": token}).get_json()
    assert polled["admitted"] and polled["number"] == 2
    with shop.app.app_context():
        settings = queue_api.room_settings()  # as the checkout asks for them
    with shop.engine.connect() as conn:
        assert wr.check_admission(conn, settings, shop.session, polled["pass"], shop.clock.now)


def test_every_field_is_checked_and_bad_tokens_refused(shop):
    def error(response):
        return response.status_code, response.get_json()["error"], response.get_json()["params"]

    assert error(shop.client.post(shop.url, json={"token": 7})) == (
        400, "bad_field", {"field": "token"})
    assert error(shop.client.post(shop.url, json=["token"]))[:2] == (400, "bad_json")
    assert error(shop.client.post(shop.url, data="token", content_type="text/plain")
                 )[:2] == (400, "bad_json")
    assert error(shop.client.get(shop.url)) == (400, "bad_field", {"field": "token"})
    assert error(shop.client.get(shop.url, query_string={"token": "x" * 201})) == (
        400, "bad_field", {"field": "token"})
    assert error(shop.client.get(shop.url, query_string={"token": "wq1.1.1.9.abc"})) == (
        403, "queue_token_invalid", {"session_id": shop.session})
    token = shop.client.post(shop.url).get_json()["token"]
    other = f"/api/public/v1/sessions/{shop.session + 1}/queue"
    assert error(shop.client.get(other, query_string={"token": token}))[:2] == (
        404, "unknown_session")
    shop.clock.now = NOW + timedelta(hours=12)
    assert error(shop.client.post(shop.url, json={"token": token}))[:2] == (
        403, "queue_token_expired")


def test_bad_settings_stop_the_app_from_being_made(hub_url, key_store):
    with pytest.raises(wr.QueueError):
        create_app({"DATABASE_URL": hub_url, "TESTING": True, "WAITING_ROOM_RATE": "lots"})


def test_entering_is_limited_per_client_address(hub_url, key_store):
    h = make_shop(hub_url, RATELIMIT_ENABLED=True, WAITING_ROOM_ENTER_LIMIT="3 per minute",
                  TRUSTED_PROXIES=1)
    try:
        here = {"X-Forwarded-For": "198.51.100.7"}
        assert [h.client.post(h.url, headers=here).status_code for _ in range(4)] == [
            201, 201, 201, 429]
        refused = h.client.post(h.url, headers=here)
        assert refused.get_json()["error"] == "rate_limited" and refused.headers["Retry-After"]
        there = h.client.post(h.url, headers={"X-Forwarded-For": "198.51.100.8"})
        assert there.status_code == 201 and there.get_json()["number"] == 4
        # polling is not limited: it writes nothing
        token = there.get_json()["token"]
        assert {h.client.get(h.url, query_string={"token": token}, headers=here).status_code
                for _ in range(5)} == {200}
    finally:
        h.app.extensions["db"].dispose()
        h.engine.dispose()
