"""Every GET route of the appliance's web app, signed in as an admin over the sample venue
(entries, a device, a paired handheld, a device command), answers hostile query strings with
4xx, never 5xx: a bad argument is refused naming the field. See tests/webfuzz.py."""

from __future__ import annotations

from edge import handhelds
from edge.engine import Engine, Scan, ScanKind
from edge.holders import HolderVault
from tests.webfuzz import concrete_paths, fuzz


def test_no_query_string_makes_any_appliance_page_or_api_fail(app, appliance, as_role):
    conn = appliance["conn"]
    venue = appliance["venue"]
    engine = Engine(conn, HolderVault(appliance["holder_key"]))
    for ticket in list(venue.tickets.values())[:3]:
        engine.decide(Scan(ScanKind.QR, ticket.code), "N1")
    conn.execute("INSERT INTO devices (id, lane_id, kind, name, config, enabled) "
                 "SELECT 'cam-n1', id, 'qr_camera', 'Camera N1', '{}', 1 FROM lanes "
                 "WHERE code = 'N1'")
    pairing = handhelds.create_pairing(conn, "PDA 1", [], "test")
    paired = handhelds.pair(conn, pairing.code)
    admin = as_role("admin")
    admin.get("/devices/")
    command = admin.post("/devices/cam-n1/test")
    assert command.status_code < 400, command.data
    (command_id,) = conn.execute("SELECT max(id) FROM device_commands").fetchone()
    paths = concrete_paths(app, {"device_id": "cam-n1", "command_id": str(command_id or 1),
                                 "name": "app.js"}, skip=("static",))

    def headers(path: str) -> dict:
        return {"Authorization": f"Bearer {paired.token}"} if path.startswith("/api/") else {}

    failures = fuzz(app, admin.client, paths, headers)
    assert not failures, "\n".join(failures)
    # a refused argument is named, on the page and in JSON
    r = admin.get("/audit?before=99999999999999999999")
    assert r.status_code == 400 and b"before=99999999999999999999" in r.data
    r = admin.get("/gate/feed.json?after=%C2%B2", headers={"X-Requested-With": "fetch"})
    assert r.status_code == 400 and "after=²" in r.json["message"]
    assert admin.get("/dashboard?minutes=15").status_code == 200
