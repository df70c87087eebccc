"""The ops pages through the test client, on both databases: who may open them, the dashboard
and its live part, CSV export, conflict review, alert rules, and the wall-display link."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.tables import gates, venues
from cloud.catalog.venues import add_lane
from cloud.core.audit import audit_log
from cloud.fleet import appliances
from cloud.fleet.tables import appliances as appliance_table
from cloud.sales.tickets import issue_ticket
from sync.ids import uuid7
from sync.timeutil import to_iso, utcnow
from tests.cloud.pagekit import build_hub, post, text

OPS_PAGES = ("/ops", "/ops/data.json", "/ops/appliances", "/ops/conflicts", "/ops/alerts",
             "/ops/display", "/ops/export.csv", "/ops/export.csv?view=appliances",
             "/ops?part=live")


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    with h.engine.begin() as conn:
        add_lane(conn, h.venue, "G1", "L1")
        h.tickets = [issue_ticket(conn, session_id=h.session).id for _ in range(4)]
        reg = appliances.register(conn, h.venue, "Gate box 1")
        reg2 = appliances.register(conn, h.venue, "Gate box 2")
        from cloud.catalog.tables import sessions
        # the session is live: gates opened a moment ago
        now = utcnow()
        conn.execute(sa.update(sessions).where(sessions.c.id == h.session).values(
            starts_at=now + timedelta(minutes=30), ends_at=now + timedelta(hours=3)))
    c = h.app.test_client()
    h.auth = []
    for r in (reg, reg2):
        cred = c.post("/api/sync/v1/enroll", json={"token": r.token}).get_json()["credential"]
        h.auth.append({"Authorization": f"Appliance {cred}"})
    yield h
    h.engine.dispose()


def push(hub, box, *batch):
    r = hub.app.test_client().post("/api/sync/v1/entries", json={"entries": list(batch)},
                                   headers=hub.auth[box])
    assert r.status_code == 200
    return r.get_json()


def entry(hub, ticket, **over):
    return {"id": str(uuid7()), "seq": 1, "at": to_iso(utcnow()), "lane": "L1",
            "direction": "in", "ticket_id": ticket, "session_id": hub.session,
            "admitted": True, "reason": "OK", "cursor": 1, **over}


def test_ops_and_admin_open_the_ops_pages_and_sales_cannot(hub):
    sales, ops_user, admin = hub.client("sales"), hub.client("ops"), hub.client("admin")
    for path in OPS_PAGES:
        assert sales.get(path).status_code == 403, path
        assert ops_user.get(path).status_code == 200, path
        assert admin.get(path).status_code == 200, path
    assert hub.app.test_client().get("/ops").status_code == 303  # not signed in: sign in
    assert post(sales, "/ops/alerts/rules", {"clock_skew.threshold": "1"},
                page="/").status_code == 403
    assert "Operations" in text(ops_user.get("/")) and "Operations" not in text(sales.get("/"))


def test_ops_can_read_venues_but_not_edit_them(hub):
    ops_user = hub.client("ops")
    assert ops_user.get("/venues").status_code == 200
    assert ops_user.get(f"/venues/{hub.venue}").status_code == 200
    assert post(ops_user, "/venues", {"code": "NEW", "name": "New"},
                page="/venues").status_code == 403
    assert post(ops_user, f"/venues/{hub.venue}/zones", {"code": "Z", "name": "Z"},
                page="/venues").status_code == 403
    with hub.engine.connect() as conn:
        gate_id = conn.execute(sa.select(gates.c.id)).scalar()
    assert post(ops_user, f"/venues/{hub.venue}/gates/{gate_id}", {"name": "Renamed"},
                page="/venues").status_code == 403
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(venues)).scalar() == 1
        assert conn.execute(sa.select(gates.c.name)).scalar() == "Gate 1"


def test_the_dashboard_shows_the_numbers_and_its_live_part_follows_new_entries(hub):
    ops_user = hub.client("ops")
    page = text(ops_user.get("/ops"))
    assert 'id="n-entered">0<' in page and 'data-live="/ops?part=live"' in page
    assert "ops.js" in page and "<svg" in page
    push(hub, 0, entry(hub, hub.tickets[0]), entry(hub, hub.tickets[1]),
         entry(hub, hub.tickets[0], direction="out"), entry(hub, None, admitted=False,
                                                            reason="FORGED"))
    live = text(ops_user.get("/ops?part=live"))
    assert "<html" not in live
    assert 'id="n-entered">2<' in live and 'id="n-inside">1<' in live
    assert 'id="n-sold">4<' in live and 'id="n-refused">1<' in live
    bars = [int(n) for n in re.findall(r'data-entries="(\d+)"', live)]
    assert sum(bars) == 2 and len(bars) == 60
    data = ops_user.get("/ops/data.json").get_json()
    assert data["attendance"]["totals"]["inside"] == 1
    assert data["appliances"] == {"total": 2, "online": 2}
    # one session, chosen explicitly; and its event
    for query in (f"session={hub.session}", "event=1"):
        assert 'id="n-entered">2<' in text(ops_user.get(f"/ops?{query}&part=live"))


def test_csv_export_has_what_the_page_shows(hub):
    push(hub, 0, entry(hub, hub.tickets[0]), entry(hub, hub.tickets[1]))
    r = hub.client("ops").get("/ops/export.csv")
    assert r.mimetype == "text/csv" and "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(text(r))))
    total = next(x for x in rows if x["section"] == "total")
    assert (total["sold"], total["entered"], total["inside"]) == ("4", "2", "2")
    gate = next(x for x in rows if x["section"] == "gate")
    assert (gate["gate"], gate["entries"]) == ("Gate 1", "2")
    assert sum(int(x["entries"]) for x in rows if x["section"] == "minute") == 2
    hub.app.test_client().post("/api/sync/v1/heartbeat", headers=hub.auth[0], json={"state": {
        "software_version": "0.1.0", "devices": [{"id": "cam-1", "kind": "qr", "state": "up"}]}})
    rows = list(csv.DictReader(io.StringIO(text(
        hub.client("ops").get("/ops/export.csv?view=appliances")))))
    assert [(x["appliance"], x["device"], x["state"]) for x in rows] == [
        ("Gate box 1", "cam-1", "up"), ("Gate box 2", "", "")]
    assert hub.client("ops").get("/ops/export.csv?view=nothing").status_code == 404


def test_a_conflict_is_reviewed_with_a_note(hub):
    t = hub.tickets[0]
    push(hub, 0, entry(hub, t))
    assert push(hub, 1, entry(hub, t))["conflict"]
    ops_user = hub.client("ops")
    page = text(ops_user.get("/ops/conflicts"))
    conflict_id = int(re.search(r'id="conflict-(\d+)"', page).group(1))
    assert "Gate box 1" in page and "Gate box 2" in page
    r = post(ops_user, f"/ops/conflicts/{conflict_id}/review", {"note": ""}, page="/ops")
    assert r.status_code == 303 and "note" in text(ops_user.get("/ops/conflicts"))
    r = post(ops_user, f"/ops/conflicts/{conflict_id}/review", {"note": "one person, checked"},
             page="/ops")
    assert r.status_code == 303
    assert f'id="conflict-{conflict_id}"' not in text(ops_user.get("/ops/conflicts?part=live"))
    assert "one person, checked" in text(ops_user.get("/ops/conflicts?show=reviewed"))
    with hub.engine.connect() as conn:
        who = conn.execute(sa.select(audit_log.c.actor).where(
            audit_log.c.action == "conflict.review")).scalar()
    assert who == f"staff:{hub.staff['ops']}"


def test_alert_rules_are_set_on_the_page_and_alerts_show_on_the_dashboard(hub):
    ops_user = hub.client("ops")
    hub.app.test_client().post("/api/sync/v1/heartbeat", headers=hub.auth[0],
                               json={"state": {}, "clock": to_iso(utcnow() + timedelta(seconds=8))})
    assert 'id="n-alerts">0<' in text(ops_user.get("/ops?part=live"))
    form = {"clock_skew.threshold": "5", "clock_skew.window_min": "5", "clock_skew.enabled": "on"}
    assert post(ops_user, "/ops/alerts/rules", form, page="/ops").status_code == 303
    page = text(ops_user.get("/ops/alerts"))
    assert re.search(r'name="clock_skew.threshold" value="5.0"', page)
    # the rules form switches off every rule it does not find ticked
    assert not re.search(r'name="sync_lag.enabled"[^>]*checked', page)
    with hub.engine.begin() as conn:
        conn.execute(sa.text("UPDATE counters SET value = 0 WHERE name = 'alerts_evaluated'"))
    live = text(ops_user.get("/ops?part=live"))
    assert 'id="n-alerts">1<' in live and 'data-kind="clock_skew"' in live
    bad = post(ops_user, "/ops/alerts/rules", {**form, "clock_skew.threshold": "lots"},
               page="/ops")
    assert bad.status_code == 303 and "Nothing was changed" in text(ops_user.get("/ops/alerts"))


def test_a_display_link_opens_the_wall_without_signing_in_until_revoked(hub):
    ops_user = hub.client("ops")
    page = text(post(ops_user, "/ops/display", {"name": "Left screen"}, page="/ops"))
    url = re.search(r'id="display-url">([^<]+)<', page).group(1)
    path = url.split("localhost", 1)[1]
    wall = hub.app.test_client()
    assert wall.get("/wall").status_code == 403
    r = wall.get(path)
    assert r.status_code == 303 and r.headers["Location"].endswith("/wall")
    assert "wicket_wall=" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    push(hub, 0, entry(hub, hub.tickets[0]))
    big = text(wall.get("/wall"))
    assert 'id="n-entered">1<' in big and "Sign in" not in big
    assert 'id="n-inside">1<' in text(wall.get("/wall?part=live"))
    assert wall.get("/ops").status_code == 303  # the link opens the wall, nothing else
    assert hub.app.test_client().get("/wall/open/forged").status_code == 403
    link_id = int(re.search(r'/ops/display/(\d+)/revoke', page).group(1))
    assert post(ops_user, f"/ops/display/{link_id}/revoke", page="/ops").status_code == 303
    assert wall.get("/wall").status_code == 403
    with hub.engine.connect() as conn:
        actions = list(conn.execute(sa.select(audit_log.c.action).where(
            audit_log.c.action.like("display_link.%")).order_by(audit_log.c.id)).scalars())
    assert actions == ["display_link.create", "display_link.revoke"]


def test_the_ops_pages_in_chinese(hub):
    ops_user = hub.client("ops")
    ops_user.set_cookie("wicket_lang", "zh")
    page = text(ops_user.get("/ops"))
    assert "在场人数" in page and "每分钟入场" in page
    assert "告警" in text(ops_user.get("/ops/alerts"))


def test_csv_export_cells_never_start_a_formula(hub):
    with hub.engine.begin() as conn:
        conn.execute(sa.update(appliance_table).where(appliance_table.c.name == "Gate box 2")
                     .values(name="=HYPERLINK(\"http://evil.example\",\"x\")"))
        conn.execute(sa.update(venues).where(venues.c.id == hub.venue).values(name="@SUM(1)"))
    hub.app.test_client().post("/api/sync/v1/heartbeat", headers=hub.auth[0], json={"state": {
        "software_version": "0.1.0",
        "devices": [{"id": "-cam", "kind": "qr", "state": "up", "error": "+1"}]}})
    push(hub, 0, entry(hub, hub.tickets[0]))
    for view in ("dashboard", "appliances"):
        rows = list(csv.reader(io.StringIO(text(
            hub.client("ops").get(f"/ops/export.csv?view={view}")))))
        cells = [c for r in rows for c in r]
        assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells), view
    assert "'=HYPERLINK(\"http://evil.example\",\"x\")" in cells and "'@SUM(1)" in cells
    assert "'-cam" in cells


def test_the_dashboard_shows_admissions_by_ticket_number_apart(hub):
    ops_user = hub.client("ops")
    push(hub, 0, entry(hub, hub.tickets[0], kind="manual", staff="alice"),
         entry(hub, hub.tickets[1], kind="qr"),
         entry(hub, hub.tickets[2], kind="override", staff="sue"))
    live = text(ops_user.get("/ops?part=live"))
    assert 'id="n-entered">3<' in live and 'id="n-by-number">1<' in live
    assert "Admitted by ticket number" in live and "By ticket number" in live
    ops_user.set_cookie("wicket_lang", "zh")
    assert "凭票号人工放行" in text(ops_user.get("/ops?part=live"))
