"""The gate screen tells the truth, in a real browser against a real `wicket-edge web`: a valid
ticket at a lane whose turnstile is down is amber and says why, each verdict shows its time and
gives way to "Ready" after the configured seconds, a help-desk check stays until staff dismiss
it, "Open anyway" still works after it was refused for a missing reason, and each lane shows
its devices. The page's clock is Playwright's (installed before the page loads), so the fade is
stepped through, not waited for."""

from __future__ import annotations

import re

from playwright.sync_api import expect, sync_playwright

from edge import db as db_mod
from edge import staff
from sync.timeutil import to_iso, utcnow
from tests.edge.web.conftest import PASSWORDS
from tests.edge.web.test_browser import DEADLINE_S, decide_as_runtime, web_process  # noqa: F401


def _setup(box: dict) -> None:
    conn = db_mod.connect(box["db"])
    try:
        for role in ("admin", "supervisor"):
            staff.create_user(conn, role, PASSWORDS[role], role, "test")
        now = to_iso(utcnow())
        conn.executemany(
            "INSERT INTO devices (id, lane_id, kind, name, config, state, state_detail, "
            "state_at, seen_at) VALUES (?, 1, ?, '', '{}', ?, ?, ?, ?)",
            [("N1-TS", "turnstile", "down", "no board answers as unit 1", now, now),
             ("N1-CAM", "qr_camera", "up", "", now, now)])
    finally:
        conn.close()


def _login(page, base: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", "supervisor")
    page.fill("input[name=password]", PASSWORDS["supervisor"])
    page.click("button[type=submit].primary")
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def test_the_gate_screen_tells_the_lanes_real_outcome_in_a_real_browser(web_process):  # noqa: F811
    base, box = web_process["base"], web_process["box"]
    venue = box["venue"]
    _setup(box)
    seated = venue.tickets[venue.named["seated"]]
    other = next(t for t in venue.tickets.values()
                 if t.session_id == 1 and t.zone_id in (1, 2) and t.id != seated.id)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            context = browser.new_context(locale="en-GB")
            context.set_default_timeout(DEADLINE_S * 1000)
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.clock.install()
            _login(page, base)
            page.goto(base + "/gate/?lane=N1&lane=N2")
            n1 = page.locator(".lane-panel[data-lane=N1]")
            verdict = n1.locator(".verdict")
            # the lane's devices at a glance
            expect(n1.locator("ul.devices li.state-down")).to_have_text("turnstile N1-TS: down")
            expect(n1.locator("ul.devices li.state-up")).to_have_text("QR camera N1-CAM: up")

            # a valid ticket, but the turnstile is down: amber, with the reason and the time
            n1.locator(".wedge-input").fill(seated.code)
            n1.locator(".wedge-input").press("Enter")
            expect(verdict).to_have_class(re.compile(r"\bamber\b"))
            expect(verdict.locator(".words")).to_have_text("Valid — lane did not open")
            expect(verdict.locator(".detail")).to_contain_text("turnstile N1-TS is down")
            expect(verdict.locator(".at")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))

            # "Open anyway" without a reason says what is missing, and works once given one
            reason = n1.locator(".override-reason")
            reason.fill("ab")
            n1.locator("form.override button").click()
            expect(n1.locator(".override-error")).to_have_text("Say why the lane is opened.")
            expect(verdict).to_have_class(re.compile(r"\bamber\b"))  # the refused scan stays
            reason.fill("turnstile jammed, let through by hand")
            n1.locator("form.override button").click()
            expect(verdict.locator(".words")).to_have_text("Opened by override")
            expect(n1.locator(".override-error")).to_be_hidden()

            # the verdict gives way to "Ready" after verdict_fade_s (8 s by default)
            page.clock.run_for(7000)
            expect(verdict.locator(".words")).to_have_text("Opened by override")
            page.clock.run_for(1500)
            expect(verdict).to_have_class(re.compile(r"\bidle\b"))
            expect(verdict.locator(".words")).to_have_text("Ready")
            expect(verdict.locator(".at")).to_have_text("")

            # the help desk: a check stays on the screen through the lane's next verdicts
            desk = context.new_page()
            desk.clock.install()
            desk.goto(base + "/gate/?lane=N2&mode=check")
            n2 = desk.locator(".lane-panel[data-lane=N2]")
            checked = n2.locator(".verdict")
            n2.locator(".wedge-input").fill(seated.code)
            n2.locator(".wedge-input").press("Enter")
            expect(checked).to_have_class(re.compile(r"\bchecked\b"))
            expect(checked.locator(".detail")).to_contain_text("Checked only")
            feed = desk.locator("#feed li")
            before = feed.count()
            decide_as_runtime(box, other.code, "N2")
            desk.clock.run_for(2000)  # the feed's next look
            expect(feed).to_have_count(before + 1)
            desk.clock.run_for(30_000)
            expect(checked).to_have_class(re.compile(r"\bchecked\b"))
            expect(checked.locator(".detail")).to_contain_text("Checked only")
            n2.locator(".verdict .dismiss").click()
            expect(checked.locator(".words")).to_have_text("Ready")
            assert errors == []
        finally:
            browser.close()
    conn = db_mod.connect(box["db"])
    try:
        # the override answered the scan the lane did not open for: its ticket is inside
        (row,) = conn.execute("SELECT ticket_id, admitted FROM entries WHERE detail LIKE "
                              "'override by supervisor:%'").fetchall()
    finally:
        conn.close()
    assert row == (seated.id, 1)
