"""Central ops as an ops user meets it: headless Chromium on the dashboard of a real hub process
while a real appliance (``wicket-edge enroll`` and ``wicket-edge sync`` with fast intervals)
pushes the entries its engine decides. The numbers and the chart follow; stopping the
appliance's agent raises the offline alert, and starting it again clears it."""

from __future__ import annotations

import re

from cloud.catalog.venues import add_lane
from cloud.sales.tickets import issue_ticket
from cloud.staff.staff import create_staff
from edge.reasons import Reason
from tests.e2e.conftest import wait_for

PASSWORD = "correct horse battery"


def test_an_ops_user_watches_entries_arrive_and_an_appliance_go_dark(hub, make_appliance,
                                                                     tmp_path):
    from playwright.sync_api import expect, sync_playwright

    venue = hub.add_venue("OSC")
    with hub.begin() as conn:
        add_lane(conn, venue["id"], "G1", "L1")
        tickets = [issue_ticket(conn, session_id=venue["session"]) for _ in range(8)]
        create_staff(conn, "li.ops", PASSWORD, "ops", actor="test")
    box = make_appliance()
    r = box.cli("enroll", "--hub", hub.process.url, "--token", hub.token(venue, "North box"))
    assert r.returncode == 0, r.stderr
    box.start_agent()
    wait_for(lambda: box.query("SELECT count(*) FROM tickets") == [(8,)]
             and box.query("SELECT code FROM lanes") == [("L1",)], what="the first sync")

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{hub.process.url}/ops")
        page.fill("input[name=username]", "li.ops")
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(re.compile(r"/ops$"))
        assert page.text_content("#n-sold") == "8"
        assert page.text_content("#n-entered") == "0"
        page.screenshot(path=shots / "dashboard-empty.png", full_page=True)

        for t in tickets[:5]:
            assert box.scan(t.code).reason is Reason.OK
        assert box.scan(tickets[0].code).reason is Reason.ALREADY_ENTERED
        # the page asks for its numbers again by itself: no reload here
        expect(page.locator("#n-entered")).to_have_text("5", timeout=60_000)
        expect(page.locator("#n-refused")).to_have_text("1", timeout=60_000)
        assert page.text_content("#n-inside") == "5"
        bars = page.eval_on_selector_all(
            "svg.chart rect.bar", "rs => rs.map(r => Number(r.dataset.entries))")
        assert sum(bars) == 5 and len(bars) == 60
        page.screenshot(path=shots / "dashboard-entries.png", full_page=True)

        # a wall display opened with a link an ops user made: no sign-in there
        page.goto(f"{hub.process.url}/ops/display")
        page.fill("input[name=name]", "Control room")
        page.click("button:has-text('Create a display link')")
        link = page.text_content("#display-url")
        wall_context = browser.new_context(viewport={"width": 1920, "height": 1080})
        wall = wall_context.new_page()
        wall.goto(link)
        assert wall.url == f"{hub.process.url}/wall"
        expect(wall.locator("#n-entered")).to_have_text("5", timeout=60_000)
        assert wall.locator("input[name=password]").count() == 0
        wall.screenshot(path=shots / "wall.png")

        # an offline threshold of a few seconds, set on the alerts page
        page.goto(f"{hub.process.url}/ops/alerts")
        page.fill("input[name='appliance_offline.threshold']", "0.1")
        page.click("button:has-text('Save rules')")
        page.wait_for_selector("text=Alert rules saved.")
        page.goto(f"{hub.process.url}/ops")
        assert page.text_content("#n-appliances") == "1 / 1"

        code, _err = box.stop_agent()
        assert code == 0
        page.wait_for_selector("#open-alerts li[data-kind=appliance_offline]",
                               timeout=60_000)
        assert page.text_content("#n-appliances") == "0 / 1"
        assert "North box" in page.text_content("#open-alerts")
        page.screenshot(path=shots / "dashboard-offline.png", full_page=True)
        wall.wait_for_selector("#open-alerts li[data-kind=appliance_offline]", timeout=60_000)
        wall.screenshot(path=shots / "wall-offline.png")

        box.start_agent()
        page.wait_for_selector("#open-alerts", state="detached", timeout=60_000)
        assert page.text_content("#n-alerts") == "0"
        assert page.text_content("#n-appliances") == "1 / 1"
        page.screenshot(path=shots / "dashboard-back.png", full_page=True)

        # the alert's life is in the audit log, raised then cleared
        page.goto(f"{hub.process.url}/ops/alerts")
        assert page.locator("#recent-alerts tr[data-kind=appliance_offline]").count() == 1
        browser.close()
    with hub.begin() as conn:
        actions = [r[0] for r in conn.exec_driver_sql(
            "SELECT action FROM audit_log WHERE action LIKE 'alert.%' ORDER BY id")]
    assert actions == ["alert.raise", "alert.clear"]
    assert {p.name for p in shots.iterdir()} == {
        "dashboard-empty.png", "dashboard-entries.png", "dashboard-offline.png",
        "dashboard-back.png", "wall.png", "wall-offline.png"}
