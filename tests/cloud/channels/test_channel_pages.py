"""The channels' staff pages and JSON API (both databases): a channel set up, switched off
after a confirmation, its window and quota; a booth's hours and staff; the same through the
API with a staff token."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier
from cloud.channels.tables import channel_staff, channels
from cloud.inventory.tables import quotas
from cloud.staff.tokens import create_token
from tests.cloud.pagekit import build_hub, post, text


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    with h.engine.begin() as conn:
        h.tier = add_price_tier(conn, h.session, "A", "Category A", 38000)
    yield h
    h.engine.dispose()


def channel_row(hub, code: str):
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(channels).where(channels.c.code == code)).first()


def test_a_booth_is_set_up_switched_off_after_a_confirmation_and_given_a_quota(hub):
    admin = hub.client("admin")
    made = post(admin, "/channels", {"code": "north", "name": "North booth", "kind": "booth"},
                page="/channels")
    assert made.status_code == 303
    booth = channel_row(hub, "north")
    assert booth.enabled and booth.kind == "booth"
    bad = post(admin, "/channels", {"code": "north", "name": "Again", "kind": "booth"},
               page="/channels")
    assert bad.status_code == 422 and channel_row(hub, "north").name == "North booth"
    confirm = text(admin.get(f"/channels/{booth.id}/switch"))
    assert "Yes, switch it off" in confirm
    assert post(admin, f"/channels/{booth.id}/switch", {"enabled": "off"},
                page="/channels").status_code == 303
    assert not channel_row(hub, "north").enabled
    assert post(admin, f"/channels/{booth.id}/quotas", {"price_tier_id": hub.tier,
                                                        "capacity": "2"},
                page="/channels").status_code == 303
    refused = post(admin, f"/channels/{booth.id}/quotas", {"price_tier_id": hub.tier,
                                                           "capacity": "two"}, page="/channels")
    assert refused.status_code == 422 and "A whole number" in text(refused)
    with hub.engine.connect() as conn:
        q = conn.execute(sa.select(quotas.c.capacity, quotas.c.used).where(
            quotas.c.channel_id == booth.id)).one()
    assert tuple(q) == (2, 0)
    hours = post(admin, f"/channels/{booth.id}/hours",
                 {"days": ["0", "1"], "opens": "10:00", "closes": "09:00"}, page="/channels")
    assert hours.status_code == 422 and channel_row(hub, "north").opening_hours is None
    assert post(admin, f"/channels/{booth.id}/hours",
                {"days": ["0", "1"], "opens": "09:00", "closes": "18:00"},
                page="/channels").status_code == 303
    assert channel_row(hub, "north").opening_hours == {"days": [0, 1], "opens": "09:00",
                                                       "closes": "18:00"}
    assert post(admin, f"/channels/{booth.id}/staff", {"username": "sales-user"},
                page="/channels").status_code == 303
    page = text(admin.get(f"/channels/{booth.id}"))
    assert "sales-user" in page and "Switched off" in page
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(channel_staff.c.staff_id)).scalars().all() == [
            hub.staff["sales"]]
    # a clerk may not run the channels
    assert hub.client("sales").get("/channels").status_code == 403


def test_the_channels_api_sets_up_switches_and_gives_quotas(hub):
    with hub.engine.begin() as conn:
        token = create_token(conn, hub.staff["admin"], "t", "test")[1]
        clerk = create_token(conn, hub.staff["sales"], "t", "test")[1]
    api = hub.app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    made = api.post("/api/v1/channels", headers=auth,
                    json={"code": "kiosk-1", "name": "Kiosk", "kind": "kiosk"})
    assert made.status_code == 201 and made.get_json()["enabled"] is True
    cid = made.get_json()["id"]
    bad = api.post("/api/v1/channels", headers=auth, json={"code": "x", "name": "X",
                                                           "kind": "shop"})
    assert bad.status_code == 400 and bad.get_json()["params"]["field"] == "kind"
    off = api.post(f"/api/v1/channels/{cid}/switch", headers=auth, json={"enabled": False})
    assert off.status_code == 200 and off.get_json()["enabled"] is False
    window = api.post(f"/api/v1/channels/{cid}/window", headers=auth,
                      json={"opens_at": "2026-08-01T09:00:00+08:00", "closes_at": None})
    assert window.get_json()["sale_opens_at"].startswith("2026-08-01T01:00")
    naive = api.post(f"/api/v1/channels/{cid}/window", headers=auth,
                     json={"opens_at": "2026-08-01T09:00:00", "closes_at": None})
    assert naive.status_code == 400 and naive.get_json()["params"]["field"] == "opens_at"
    quota = api.post(f"/api/v1/channels/{cid}/quotas", headers=auth,
                     json={"session_id": hub.session, "price_tier_id": hub.tier,
                           "capacity": 5})
    assert quota.status_code == 200
    assert [(q["capacity"], q["used"]) for q in quota.get_json()["quotas"]] == [(5, 0)]
    listed = api.get("/api/v1/channels", headers=auth).get_json()["channels"]
    assert [c["code"] for c in listed] == ["kiosk-1"]
    assert api.get("/api/v1/channels", headers={"Authorization": f"Bearer {clerk}"}
                   ).status_code == 403
