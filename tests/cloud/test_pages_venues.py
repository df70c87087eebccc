"""Venue pages: create a venue, its zones and gates; import a seat map (every bad row shown,
nothing changed) and download it — on both databases."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from cloud.catalog.tables import gates, seats, venues
from cloud.core.audit import audit_log
from cloud.core.changes import change_log
from sync.changes import parse_change
from tests.cloud.pagekit import build_hub, post, text


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    yield h
    h.engine.dispose()


def seat_count(hub) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(seats)).scalar()


def test_admin_creates_a_venue_with_zones_and_a_gate(hub):
    admin = hub.client("admin")
    r = post(admin, "/venues", {"code": "AQC", "name": "Aquatics Centre", "address": "2 Pool Rd",
                                "timezone": "Asia/Urumqi"}, page="/venues")
    assert r.status_code == 303
    page = text(admin.get(r.headers["Location"]))
    assert "Aquatics Centre" in page and "Asia/Urumqi" in page
    with hub.engine.connect() as conn:
        venue_id = conn.execute(sa.select(venues.c.id).where(venues.c.code == "AQC")).scalar()
        actor = conn.execute(sa.select(audit_log.c.actor)
                             .where(audit_log.c.action == "venue.create")
                             .order_by(audit_log.c.id.desc())).scalars().first()
    assert actor == f"staff:{hub.staff['admin']}"
    again = post(admin, "/venues", {"code": "AQC", "name": "Again"}, page="/venues")
    assert again.status_code == 422 and "exists already" in text(again)
    bad_zone = post(admin, "/venues", {"code": "X1", "name": "X", "timezone": "Mars/Olympus"},
                    page="/venues")
    assert bad_zone.status_code == 422 and "unknown time zone" in text(bad_zone)

    for code, name in (("P", "Pool deck"), ("S", "Stands")):
        assert post(admin, f"/venues/{venue_id}/zones", {"code": code, "name": name},
                    page="/venues").status_code == 303
    r = post(admin, f"/venues/{venue_id}/gates",
             {"code": "E1", "name": "East entrance", "zone": ["P", "S"], "reentry": "yes",
              "realname_mode": "ticket_and_id", "open_before_min": "45",
              "close_after_min": "20"}, page="/venues")
    assert r.status_code == 303
    page = text(admin.get(f"/venues/{venue_id}"))
    assert "East entrance" in page and "P, S" in page and "ticket and ID card" in page
    with hub.engine.connect() as conn:
        gate = conn.execute(sa.select(gates).where(gates.c.venue_id == venue_id)).one()
        sent = conn.execute(sa.select(change_log.c.record).where(
            change_log.c.venue_id == venue_id, change_log.c.kind == "gate")).scalar()
    assert (gate.reentry, gate.realname_mode, gate.open_before_min, gate.close_after_min) == \
        (True, "ticket_and_id", 45, 20)
    assert len(sent["zones"]) == 2
    dup = post(admin, f"/venues/{venue_id}/gates", {"code": "E1", "name": "Again"},
               page="/venues")
    assert dup.status_code == 422 and "exists already" in text(dup)
    bad = post(admin, f"/venues/{venue_id}/gates", {"code": "E2", "name": "x",
                                                    "open_before_min": "lots"}, page="/venues")
    assert bad.status_code == 422 and "0 to 1440" in text(bad)


def upload(client, venue_id, data: bytes, name="seats.csv"):
    return post(client, f"/venues/{venue_id}/seats",
                {"file": (io.BytesIO(data), name)}, page="/venues",
                content_type="multipart/form-data")


def test_a_bad_seat_map_lists_every_row_error_and_changes_nothing(hub):
    admin = hub.client("admin")
    before = seat_count(hub)
    bad = ("level,zone,row,number,category,damaged\n"
           "L2,A,C1,1,std,\n"
           "L2,Q,C1,2,std,\n"        # unknown zone
           "L2,A,C1,,std,maybe\n"    # empty number, bad flag
           "L2,A,C1,1,std,\n")       # the first seat again
    r = upload(admin, hub.venue, bad.encode())
    assert r.status_code == 422
    page = text(r)
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>',
                      page.split('id="import-errors"')[1])
    assert [(int(line), col) for line, col, _ in rows] == [
        (3, "zone"), (4, "number"), (4, "damaged"), (5, "number")]
    assert "appears twice" in rows[-1][2]
    assert "The seat map was not changed: 4 row errors" in page
    assert seat_count(hub) == before
    header = upload(admin, hub.venue, b"level,zone,row\nL1,A,1\n")
    assert header.status_code == 422 and "missing column(s) number, category" in text(header)
    assert seat_count(hub) == before


def test_a_good_seat_map_imports_and_downloads_again(hub):
    admin = hub.client("admin")
    before = seat_count(hub)
    good = "level,zone,row,number,category,damaged\nL2,A,C1,1,普通,\nL2,B,C1,2,贵宾,yes\n"
    r = upload(admin, hub.venue, good.encode("gb18030"))  # as a Chinese spreadsheet saves it
    assert r.status_code == 303
    assert "2 new, 0 changed" in text(admin.get(r.headers["Location"]))
    assert seat_count(hub) == before + 2
    ops = hub.client("ops")
    r = ops.get(f"/venues/{hub.venue}/seats.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    body = r.get_data().decode("utf-8-sig")
    assert body.startswith("level,zone,row,number,category,damaged,removed,obstructed\n")
    assert "L2,B,C1,2,贵宾,yes,no,no" in body
    assert len(body.strip().splitlines()) == before + 3
    assert upload(ops, hub.venue, good.encode()).status_code == 403


def test_admin_changes_a_gates_zones_and_policy_and_the_venue_is_told(hub):
    admin = hub.client("admin")
    with hub.engine.connect() as conn:
        gate_id = conn.execute(sa.select(gates.c.id).where(gates.c.code == "G1")).scalar()
    path = f"/venues/{hub.venue}/gates/{gate_id}"
    assert "Save gate" not in text(hub.client("ops").get(path))
    assert post(hub.client("ops"), path, {"name": "x"}, page="/venues").status_code == 403
    r = post(admin, path, {"name": "Gate 1 North", "zone": ["A", "B"], "reentry": "yes",
                           "realname_mode": "id_only", "open_before_min": "90",
                           "close_after_min": "15"}, page="/venues")
    assert r.status_code == 303
    bad = post(admin, path, {"name": "Gate 1", "zone": ["Q"]}, page="/venues")
    assert bad.status_code == 422 and "no zone &#39;Q&#39;" in text(bad)
    with hub.engine.connect() as conn:
        gate = conn.execute(sa.select(gates).where(gates.c.id == gate_id)).one()
        sent = conn.execute(sa.select(change_log.c.record).where(change_log.c.kind == "gate")
                            .order_by(change_log.c.seq.desc())).scalars().first()
        audit = conn.execute(sa.select(audit_log).where(audit_log.c.action == "gate.update")
                             ).one()
    assert (gate.name, gate.reentry, gate.realname_mode, gate.open_before_min) == \
        ("Gate 1 North", True, "id_only", 90)
    assert len(sent["zones"]) == 2 and sent["realname_mode"] == "id_only"
    assert len(audit.before["zones"]) == 1 and audit.actor == f"staff:{hub.staff['admin']}"
    assert "ID card alone" in text(admin.get(f"/venues/{hub.venue}"))


def test_seat_map_cells_that_a_spreadsheet_would_run_are_neutralised_and_read_back(hub):
    admin = hub.client("admin")
    before = seat_count(hub)
    hostile = ("level,zone,row,number,category\n"
               "-1,A,=HYPERLINK(\"x\"),1,std\n"
               "-1,A,@SUM(A1),2,+cmd\n")
    assert upload(admin, hub.venue, hostile.encode()).status_code == 303
    body = admin.get(f"/venues/{hub.venue}/seats.csv").get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    exported = [r for r in rows if r[0].startswith("'-")]
    assert sorted(exported) == [
        ["'-1", "A", "'=HYPERLINK(\"x\")", "1", "std", "no", "no", "no"],
        ["'-1", "A", "'@SUM(A1)", "2", "'+cmd", "no", "no", "no"]]
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
    # the exported file imports again as the same seats: nothing new, nothing changed
    r = upload(admin, hub.venue, body.encode())
    assert r.status_code == 303
    assert f"0 new, 0 changed, {before + 2} unchanged" in text(admin.get(r.headers["Location"]))
    assert seat_count(hub) == before + 2


def test_a_gate_admits_on_typed_ticket_numbers_only_when_an_admin_says_so(hub):
    admin = hub.client("admin")
    with hub.engine.connect() as conn:
        gate_id = conn.execute(sa.select(gates.c.id).where(gates.c.code == "G1")).scalar()
        assert conn.execute(sa.select(gates.c.manual_entry).where(gates.c.id == gate_id)
                            ).scalar() is False  # off by default
    path = f"/venues/{hub.venue}/gates/{gate_id}"
    assert 'name="manual_entry"' in text(admin.get(path))
    form = {"name": "Gate 1", "zone": ["A"], "realname_mode": "ticket",
            "open_before_min": "30", "close_after_min": "60"}

    def state():
        with hub.engine.connect() as conn:
            sent = conn.execute(sa.select(change_log.c.record).where(change_log.c.kind == "gate")
                                .order_by(change_log.c.seq.desc())).scalars().first()
            stored = conn.execute(sa.select(gates.c.manual_entry)
                                  .where(gates.c.id == gate_id)).scalar()
        # the record is one the appliances accept
        return stored, parse_change({**sent, "seq": 1}).data["manual_entry"]

    assert post(admin, path, {**form, "manual_entry": "yes"}, page="/venues").status_code == 303
    assert state() == (True, True)  # stored, and sent to the venue's appliances
    assert post(admin, path, form, page="/venues").status_code == 303
    assert state() == (False, False)
    with hub.engine.connect() as conn:
        audit = conn.execute(sa.select(audit_log).where(audit_log.c.action == "gate.update")
                             .order_by(audit_log.c.id)).all()
    assert (audit[0].before["manual_entry"], audit[0].after["manual_entry"]) == (False, True)
