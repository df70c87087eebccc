"""Appliance pages: register (the token shown once, as text and QR code), the list with
heartbeat age, report and clock skew, rename, commands and revocation — on both databases."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.fleet.tables import appliance_commands, appliances
from sync.timeutil import to_iso, utcnow
from tests.cloud.pagekit import build_hub, post, text


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    yield h
    h.engine.dispose()


def register(client, hub, name="Gate 1 box"):
    return post(client, "/appliances", {"venue_id": hub.venue, "name": name},
                page="/appliances")


def test_registering_shows_the_token_once_and_it_enrolls(hub):
    hub.app.config["HUB_PUBLIC_URL"] = "https://hub.example.org/"
    admin = hub.client("admin")
    r = register(admin, hub)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    page = text(r)
    token = re.search(r'<code id="enroll-token">([^<]+)</code>', page).group(1)
    payload = json.loads(re.search(r'<code id="enroll-payload">([^<]+)</code>', page)
                         .group(1).replace("&#34;", '"'))
    assert payload == {"v": 1, "hub": "https://hub.example.org/", "token": token}
    assert '<svg' in page.split('id="enroll-qr"')[1]
    listing = text(admin.get("/appliances"))
    assert "Gate 1 box" in listing and token not in listing
    # the token shown is the real one: the appliance enrolls with it, once
    enrolled = admin.post("/api/sync/v1/enroll", json={"token": token})
    assert enrolled.status_code == 201
    assert admin.post("/api/sync/v1/enroll", json={"token": token}).status_code in (400, 401)
    credential = enrolled.get_json()["credential"]
    beat = admin.post("/api/sync/v1/heartbeat",
                      json={"state": {"queue": {"unsent": 3}, "software_version": "0.1"},
                            "clock": to_iso(utcnow() + timedelta(seconds=5))},
                      headers={"Authorization": f"Appliance {credential}"})
    assert beat.status_code == 200
    listing = text(hub.client("ops").get(f"/appliances?venue={hub.venue}"))
    assert "version 0.1; entries not sent: 3" in listing
    assert re.search(r'class="num bad">\+[45]\.\d s<', listing)  # five seconds ahead
    assert re.search(r"\d+ s ago", listing)


def test_rename_commands_wipe_and_revoke(hub):
    admin = hub.client("admin")
    register(admin, hub)
    with hub.engine.begin() as conn:
        appliance_id = conn.execute(sa.select(appliances.c.id)).scalar()
        # as if it had enrolled
        conn.execute(sa.update(appliances).values(state="active", last_seen_at=utcnow()))
    base = f"/appliances/{appliance_id}"
    assert post(admin, f"{base}/name", {"name": "North gate box"},
                page="/appliances").status_code == 303
    assert post(admin, f"{base}/commands", {"command": "resync"},
                page="/appliances").status_code == 303
    assert "Wipe North gate box?" in text(admin.get(f"{base}/wipe"))
    assert post(admin, f"{base}/commands", {"command": "wipe"},
                page="/appliances").status_code == 303
    assert post(admin, f"{base}/commands", {"command": "selfdestruct"},
                page="/appliances").status_code == 400
    ops = hub.client("ops")
    listing = text(ops.get("/appliances"))
    assert "North gate box" in listing and "Roll credential" not in listing
    assert post(ops, f"{base}/commands", {"command": "resync"},
                page="/appliances").status_code == 403
    assert "Revoke North gate box?" in text(admin.get(f"{base}/revoke"))
    assert post(admin, f"{base}/revoke", page="/appliances").status_code == 303
    r = post(admin, f"{base}/commands", {"command": "resync"}, page="/appliances")
    assert "Only an enrolled, active appliance" in text(admin.get(r.headers["Location"]))
    with hub.engine.connect() as conn:
        a = conn.execute(sa.select(appliances)).one()
        cmds = list(conn.execute(sa.select(appliance_commands.c.command)
                                 .order_by(appliance_commands.c.id)).scalars())
    assert (a.name, a.state) == ("North gate box", "revoked")
    assert cmds == ["resync", "wipe"]
