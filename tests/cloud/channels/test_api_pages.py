"""The portal's API pages on the test client, on both databases: the documentation open to
anyone with a worked example the hub itself signs; keys made (the secret shown once, never
listed), rotated and revoked after asking, by the signed-in partner only, with CSRF."""

from __future__ import annotations

import re

import pytest

from cloud.channels import signing
from cloud.channels.portal_key_pages import EXAMPLE
from tests.cloud.channels.apikit import api_hub
from tests.cloud.pagekit import PASSWORD, text

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def hub(hub_url):
    h = api_hub(hub_url)
    yield h
    h.engine.dispose()


def _token(client, path: str = "/partner/sign-in") -> str:
    return _CSRF.search(text(client.get(path))).group(1)


def portal(hub, username: str = "travel-user"):
    client = hub.app.test_client()
    r = client.post("/partner/sign-in", data={"username": username, "password": PASSWORD,
                                              "csrf_token": _token(client)})
    assert r.status_code == 303, text(r)
    return client


def test_the_api_page_is_open_and_its_example_is_signed_as_the_hub_checks(hub):
    page = text(hub.app.test_client().get("/partner/api"))
    stamp = str(EXAMPLE["timestamp"])
    signature = signing.sign(EXAMPLE["secret"], "POST", EXAMPLE["path"], stamp,
                             EXAMPLE["nonce"], EXAMPLE["body"].encode())
    assert signature in page and "/api/partner/v1/openapi.json" in page
    for call in ("POST /api/partner/v1/orders", "GET /api/partner/v1/products",
                 "POST /api/partner/v1/orders/{number}/refunds"):
        assert call in page
    assert "openssl dgst -sha256 -hmac" in page and "hmac.new(SECRET.encode()" in page
    zh = hub.app.test_client()
    zh.set_cookie("lang", "zh")
    assert "签名" in text(zh.get("/partner/api", headers={"Accept-Language": "zh-CN"}))


def test_the_key_pages_need_a_signed_in_partner(hub):
    client = hub.app.test_client()
    for path in ("/partner/api-keys", f"/partner/api-keys/{hub.key_id}",
                 f"/partner/api-keys/{hub.key_id}/revoke"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["Location"].startswith("/partner/sign-in")


def test_a_key_is_made_with_its_secret_shown_once(hub):
    client = portal(hub)
    listed = text(client.get("/partner/api-keys"))
    assert hub.key_id in listed and hub.secret not in listed
    r = client.post("/partner/api-keys", data={
        "name": "till", "channel_id": str(hub.channel), "scopes": ["orders:read"],
        "per_minute": "60", "csrf_token": _token(client, "/partner/api-keys")})
    page = text(r)
    assert r.status_code == 200 and "shown only this once" in page
    key_id = re.search(r'id="key-id">([^<]+)<', page).group(1)
    secret = re.search(r'id="key-secret">([^<]+)<', page).group(1)
    again = text(client.get("/partner/api-keys"))
    assert key_id in again and secret not in again
    assert hub.client(key_id, secret).get("/api/partner/v1/orders").status_code == 200
    bad = client.post("/partner/api-keys", data={
        "name": "x", "channel_id": str(hub.rival_channel), "scopes": ["orders:read"],
        "per_minute": "60", "csrf_token": _token(client, "/partner/api-keys")})
    assert bad.status_code == 409 and "not a channel of this partner" in text(bad)
    forged = client.post("/partner/api-keys", data={
        "name": "x", "channel_id": str(hub.channel), "scopes": ["orders:read"],
        "per_minute": "60", "csrf_token": "forged"})
    assert forged.status_code == 400


def test_rotating_and_revoking_ask_first_and_touch_only_the_partners_keys(hub):
    client = portal(hub)
    ask = text(client.get(f"/partner/api-keys/{hub.key_id}/rotate"))
    assert f"Rotate key {hub.key_id}?" in ask and "24 hours" in ask
    r = client.post(f"/partner/api-keys/{hub.key_id}/rotate",
                    data={"confirm": "yes", "csrf_token": _token(client, "/partner/api-keys")})
    new_id = re.search(r'id="key-id">([^<]+)<', text(r)).group(1)
    assert r.status_code == 200 and f"replaces {hub.key_id}" in text(r)
    assert "This cannot be undone" in text(client.get(f"/partner/api-keys/{new_id}/revoke"))
    r = client.post(f"/partner/api-keys/{new_id}/revoke",
                    data={"confirm": "yes", "csrf_token": _token(client, "/partner/api-keys")})
    assert r.status_code == 303
    assert f"Key {new_id} is revoked." in text(client.get(r.headers["Location"]))
    rival = portal(hub, "rival-user")
    for path in (f"/partner/api-keys/{hub.key_id}", f"/partner/api-keys/{hub.key_id}/revoke"):
        assert rival.get(path).status_code == 404
    r = rival.post(f"/partner/api-keys/{hub.key_id}/revoke",
                   data={"csrf_token": _token(rival, "/partner/api-keys")})
    assert r.status_code == 404
    assert hub.client().get("/api/partner/v1/ping").status_code == 200  # still expiring


def test_a_keys_page_shows_its_latest_requests(hub):
    hub.client().get("/api/partner/v1/ping")
    hub.client().get("/api/partner/v1/ping", secret="wrong")
    page = text(portal(hub).get(f"/partner/api-keys/{hub.key_id}"))
    assert "GET /api/partner/v1/ping" in page and "api_signature_wrong" in page
