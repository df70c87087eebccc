"""Compacting the change log: an appliance that syncs from 0 afterwards builds the same
allowlist as one that saw every change, the checksum still agrees, and an old cursor gets 410."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.app import create_app
from cloud.catalog.events import create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.changes import change_log, record_change
from cloud.core.compaction import compact, compacted, horizon
from cloud.core.db import init_db
from cloud.fleet import appliances
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory.sessions import create_session
from cloud.sales.tickets import issue_ticket, revoke_ticket
from edge import db as edge_db
from edge.allowlist import apply_changes
from edge.holders import HolderVault, generate_holder_key
from sync.changes import parse_change
from sync.timeutil import utcnow

TABLES = ("venue", "zones", "sessions", "hub_keys", "tickets", "revocations", "blocklist")


@pytest.fixture
def hub(hub_url):
    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True})
    engine = app.extensions["db"]
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        zone = add_zone(conn, venue, "A", "North Stand")
        event = create_event(conn, "GAMES", "The Games")
        start = utcnow() + timedelta(hours=1)
        session = create_session(conn, event, venue, "Opening", start, start + timedelta(hours=2))
        issued = [issue_ticket(conn, session_id=session) for _ in range(4)]
        revoke_ticket(conn, issued[0].id)
        # a zone renamed twice and another one created then deleted: superseded and tombstone
        record_change(conn, venue, {"type": "zone", "op": "upsert", "id": zone, "code": "A",
                                    "name": "North Stand (upper)"})
        record_change(conn, venue, {"type": "zone", "op": "upsert", "id": 99, "code": "X",
                                    "name": "Temporary"})
        record_change(conn, venue, {"type": "zone", "op": "delete", "id": 99})
        credential = appliances.enroll(conn, appliances.register(conn, venue, "box").token
                                       ).credential
    yield app.test_client(), engine, venue, credential
    engine.dispose()


def pull(client, credential, since=0, limit=3):
    """Every page from ``since``; returns (changes, cursor, count received, last page)."""
    changes, cursor, received, full = [], since, 0, ""
    while True:
        r = client.get(f"/api/sync/v1/allowlist?since={cursor}&limit={limit}{full}",
                       headers={"Authorization": f"Appliance {credential}"})
        assert r.status_code == 200, r.get_json()
        page = r.get_json()
        if cursor == 0:  # a full sync names the horizon it started under
            full = f"&full={page['horizon']}"
        received += len(page["changes"]) + (page.get("compacted", 0) if cursor == 0 else 0)
        changes += page["changes"]
        cursor = page["cursor"]
        if not page["more"]:
            return changes, cursor, received, page


def edge_tables(tmp_path, name, changes):
    db = edge_db.open_db(tmp_path / f"{name}.db")
    edge_db.migrate(db)
    apply_changes(db.conn, HolderVault(generate_holder_key()), [parse_change(c) for c in changes])
    out = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}
    for t in ("hub_keys",):  # added_at is the appliance's own clock
        out[t] = [row[:2] + row[3:] for row in out[t]]
    db.conn.close()
    return out


def test_compaction_keeps_the_allowlist_and_the_checksum(hub, tmp_path):
    client, engine, venue, credential = hub
    before, cursor, received, page = pull(client, credential)
    assert received == page["checksum"]["changes"] == len(before)
    with engine.begin() as conn:
        done = compact(conn, keep_days=0, now=utcnow() + timedelta(seconds=1))
        assert done.superseded == 2 and done.tombstones == 1
        assert horizon(conn) == done.horizon >= max(c["seq"] for c in before)
        assert compacted(conn, venue) == 3
        left = conn.execute(sa.select(sa.func.count()).select_from(change_log)
                            .where(change_log.c.venue_id == venue)).scalar()
    assert left == len(before) - 3
    after, cursor_after, received_after, page = pull(client, credential)
    assert len(after) == len(before) - 3
    assert received_after == page["checksum"]["changes"] == len(before)  # the same count
    assert edge_tables(tmp_path, "all", before) == edge_tables(tmp_path, "compacted", after)
    # the appliance that saw everything is past the horizon and carries on
    assert pull(client, credential, since=cursor)[2] == 0
    # a cursor older than the horizon is answered 410, on both streams; 0 always works
    for path in ("allowlist", "revocations"):
        r = client.get(f"/api/sync/v1/{path}?since=1",
                       headers={"Authorization": f"Appliance {credential}"})
        assert r.status_code == 410 and r.get_json()["error"] == "cursor_expired"
    # a full sync that began under an older horizon is told to start again
    r = client.get(f"/api/sync/v1/allowlist?since=1&full={done.horizon - 1}",
                   headers={"Authorization": f"Appliance {credential}"})
    assert r.status_code == 410
    # compacting again with nothing old enough changes nothing
    with engine.begin() as conn:
        again = compact(conn, keep_days=30)
    assert (again.superseded, again.tombstones, again.horizon) == (0, 0, done.horizon)


def test_compaction_keeps_what_is_younger_than_the_retention(hub):
    client, engine, venue, credential = hub
    with engine.begin() as conn:
        done = compact(conn, keep_days=30)
        assert (done.superseded, done.tombstones, done.horizon) == (0, 0, 0)
    r = client.get("/api/sync/v1/allowlist?since=1",
                   headers={"Authorization": f"Appliance {credential}"})
    assert r.status_code == 200
