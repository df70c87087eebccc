"""The appliance's pages in a real browser (Debian's Chromium driven by Playwright) against a
real `wicket-edge web` process behind gunicorn: first run, a device and its test, the gate
screen's verdicts, Chinese, and a new account's forced password change. Screenshots are kept
under the test's temporary directory (the path is printed)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from edge import db as db_mod
from sync.timeutil import to_iso, utcnow
from tests.edge.web.conftest import make_appliance

ROOT = Path(__file__).resolve().parents[3]
DEADLINE_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what: str, timeout: float = DEADLINE_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def web_process(tmp_path, live_venue):
    box = make_appliance(tmp_path / "box", live_venue)
    box["conn"].close()
    port = free_port()
    log_path = tmp_path / "web.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "--config", str(box["config"]), "web", "--bind",
         f"127.0.0.1:{port}", "--workers", "2"], cwd=ROOT, stdout=log,
        stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)
    base = f"http://127.0.0.1:{port}"

    def up():
        assert proc.poll() is None, log_path.read_text()
        try:
            return requests.get(f"{base}/login", timeout=2, allow_redirects=False).status_code
        except requests.ConnectionError:
            return None

    wait_for(up, "the web process to answer")
    code = wait_for(lambda: re.search(r"setup code ([0-9A-F-]{14})", log_path.read_text()),
                    "the setup code").group(1)
    yield {"base": base, "code": code, "box": box, "proc": proc, "log": log_path}
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    finally:
        log.close()


def carry_out_tests(db_path: Path) -> int:
    """Play the gate runtime's part of the device_commands protocol for pending tests."""
    conn = db_mod.connect(db_path)
    done = 0
    try:
        for cid, args in conn.execute("SELECT id, args FROM device_commands WHERE status = "
                                      "'pending' AND command = 'test'").fetchall():
            now = to_iso(utcnow())
            took = conn.execute("UPDATE device_commands SET status = 'running', taken_at = ? "
                                "WHERE id = ? AND status = 'pending' AND expires_at > ?",
                                (now, cid, now)).rowcount
            if took:
                conn.execute("UPDATE device_commands SET status = 'done', done_at = ?, "
                             "result = ? WHERE id = ?", (to_iso(utcnow()), json.dumps(
                                 {"ok": True, "message": "pulse sent, passage seen after 1.2 s",
                                  "action": json.loads(args)["action"]}), cid))
                done += 1
    finally:
        conn.close()
    return done


def report_up(db_path: Path, device_id: str) -> None:
    """Play the gate runtime's part of reporting a device up and alive."""
    conn = db_mod.connect(db_path)
    try:
        now = to_iso(utcnow())
        conn.execute("UPDATE devices SET state = 'up', state_at = ?, seen_at = ? WHERE id = ?",
                     (now, now, device_id))
    finally:
        conn.close()


def decide_as_runtime(box: dict, code: str, lane: str) -> None:
    from edge.engine import Engine, Scan, ScanKind
    from edge.holders import HolderVault

    conn = db_mod.connect(box["db"])
    try:
        d = Engine(conn, HolderVault(box["holder_key"])).decide(
            Scan(ScanKind.QR, code, device_id=f"{lane}-CAM"), lane)
        assert d.reason == "OK"
    finally:
        conn.close()


def test_admin_and_gate_staff_in_a_real_browser(web_process, tmp_path):
    base, venue = web_process["base"], web_process["box"]["venue"]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    seated = venue.tickets[venue.named["seated"]]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
            context.set_default_timeout(DEADLINE_S * 1000)
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            # first run: the only way in, with the code the process printed
            page.goto(base + "/")
            expect(page).to_have_url(re.compile(r"/first-run$"))
            page.screenshot(path=shots / "01-first-run.png", full_page=True)
            page.fill("input[name=setup_code]", web_process["code"])
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", "Harbour-lamp-2026")
            page.fill("input[name=password2]", "Harbour-lamp-2026")
            page.click("button[type=submit].primary")
            expect(page).to_have_url(re.compile(r"/dashboard$"))
            expect(page.locator("h1")).to_have_text("Dashboard")
            # it refreshes itself
            expect(page.locator("#dashboard")).to_have_attribute(
                "data-refreshed", re.compile(r"^\d{4}-"), timeout=DEADLINE_S * 1000)
            page.screenshot(path=shots / "02-dashboard.png", full_page=True)

            # a device, and its test carried out by the (simulated) gate runtime
            page.goto(base + "/devices/")
            page.fill("#add-device input[name=id]", "N1-GATE")
            page.select_option("#add-device select[name=kind]", "turnstile")
            page.select_option("#add-device select[name=lane_id]", label="N1 ")
            found = page.locator("#add-device select.found option:not([value=''])")
            if found.count():  # what this box has: picking one fills the connection field
                value = found.first.get_attribute("value")
                page.select_option("#add-device select.found", value)
                expect(page.locator("#add-device input[name=connection]")).to_have_value(value)
            page.fill("#add-device input[name=connection]", "/dev/ttyUSB0")
            page.click("#add-device button[type=submit]")
            expect(page).to_have_url(re.compile(r"/devices/N1-GATE$"))
            page.click("#test-form button")
            expect(page.locator("#tests")).to_contain_text("waiting for the gate runtime")
            page.screenshot(path=shots / "03-device-test-waiting.png", full_page=True)
            assert carry_out_tests(web_process["box"]["db"]) == 1
            expect(page.locator("#tests")).to_contain_text("pulse sent, passage seen",
                                                           timeout=DEADLINE_S * 1000)
            page.screenshot(path=shots / "04-device-test-done.png", full_page=True)

            # a gate account with a temporary password
            page.goto(base + "/staff")
            page.fill("form.narrow input[name=username]", "steward")
            page.fill("form.narrow input[name=password]", "Temporary-gate-5")
            page.click("form.narrow button[type=submit]")
            expect(page.locator("table.grid")).to_contain_text("steward")

            # gate G1 admits on ticket numbers typed by staff (off by default)
            page.goto(base + "/venue/")
            g1 = page.locator("form.policy", has=page.locator("input[name=code][value=G1]"))
            g1.locator("input[name=manual_entry]").check()
            g1.locator("button[type=submit]").click()
            expect(page.locator("form.policy", has=page.locator(
                "input[name=code][value=G1]")).locator("input[name=manual_entry]")).to_be_checked()

            # the gate screen: a verdict per scan, with sound cues and the live feed (the
            # simulated gate runtime reports the lane's turnstile up: it would open)
            report_up(web_process["box"]["db"], "N1-GATE")
            page.goto(base + "/gate/")
            page.check("input[name=lane][value=N1]")
            page.check("input[name=lane][value=N2]")
            page.click("#choose-lanes button[type=submit]")
            n1 = page.locator(".lane-panel[data-lane=N1]")
            expect(n1.locator(".wedge-input")).to_be_focused()
            page.keyboard.type(seated.code)
            page.keyboard.press("Enter")
            verdict = n1.locator(".verdict")
            expect(verdict).to_have_class(re.compile(r"\bgreen\b"))
            expect(verdict.locator(".words")).to_have_text("Valid ticket: go ahead")
            page.screenshot(path=shots / "05-gate-ok.png", full_page=True)
            n2 = page.locator(".lane-panel[data-lane=N2]")
            n2.locator(".wedge-input").fill(seated.code)
            n2.locator(".wedge-input").press("Enter")
            expect(n2.locator(".verdict")).to_have_class(re.compile(r"\borange\b"))
            expect(n2.locator(".verdict")).to_contain_text("Ticket already used")
            expect(n2.locator(".verdict")).to_contain_text("First entry")
            n1.locator(".manual-input").fill("T99999999")
            n1.locator(".manual-input").press("Enter")
            expect(verdict).to_have_class(re.compile(r"\bred\b"))
            expect(verdict.locator(".words")).to_have_text("Ticket not recognised")
            expect(page.locator("#feed li")).to_have_count(3)
            # a ticket number typed by the signed-in admin admits, and says so
            typed = [t for t in venue.tickets.values()  # the last: not the one used below
                     if t.session_id == 1 and t.zone_id in (1, 2) and t.id != seated.id
                     and t.id < 900000][-1]
            n1.locator(".manual-input").fill(typed.number)
            n1.locator(".manual-input").press("Enter")
            expect(verdict).to_have_class(re.compile(r"\bgreen\b"))
            expect(verdict.locator(".detail")).to_contain_text("admitted by ticket number")
            expect(page.locator("#feed li").first).to_contain_text(
                "admitted by ticket number: admin")
            expect(page.locator("#feed li")).to_have_count(4)
            assert n2.locator(".manual-input").count() == 1  # N2 is of gate G1 too
            page.screenshot(path=shots / "06-gate-refused.png", full_page=True)
            # a scan by the lane's own reader (the gate runtime) shows up on its own
            other = next(t for t in venue.tickets.values()
                         if t.session_id == 1 and t.zone_id in (1, 2) and t.id != seated.id)
            decide_as_runtime(web_process["box"], other.code, "N2")
            expect(n2.locator(".verdict")).to_have_class(re.compile(r"\bgreen\b"))
            expect(page.locator("#feed li")).to_have_count(5)
            # the supervisor's override opens the lane anyway
            n1.locator(".override-reason").fill("ticket printed damaged, checked by hand")
            n1.locator("form.override button").click()
            expect(verdict.locator(".words")).to_have_text("Opened by override")

            # Chinese
            page.click("button[name=lang][value=zh]")
            expect(page.locator("header nav")).to_contain_text("检票屏")
            n1 = page.locator(".lane-panel[data-lane=N1]")
            n1.locator(".wedge-input").fill(seated.code)
            n1.locator(".wedge-input").press("Enter")
            expect(n1.locator(".verdict .words")).to_have_text("票已使用")
            expect(n1.locator(".verdict")).to_contain_text("首次入场")
            page.screenshot(path=shots / "07-gate-chinese.png", full_page=True)
            page.goto(base + "/dashboard")
            expect(page.locator("h1")).to_have_text("概览")
            page.screenshot(path=shots / "08-dashboard-chinese.png", full_page=True)
            page.click("text=退出登录")
            expect(page).to_have_url(re.compile(r"/login"))

            # the new account chooses its own password at the first login
            page.fill("input[name=username]", "steward")
            page.fill("input[name=password]", "Temporary-gate-5")
            page.click("button[type=submit].primary")
            expect(page).to_have_url(re.compile(r"/password$"))
            page.screenshot(path=shots / "09-forced-password-change.png", full_page=True)
            page.fill("input[name=current]", "Temporary-gate-5")
            page.fill("input[name=new]", "Lantern-harbor-81")
            page.fill("input[name=new2]", "Lantern-harbor-81")
            page.click("button[type=submit].primary")
            expect(page).to_have_url(re.compile(r"/gate/$"))
            assert errors == []
        finally:
            browser.close()
    assert sorted(f.name for f in shots.iterdir())[0] == "01-first-run.png"
    assert len(list(shots.iterdir())) == 9
    # the process logs requests but never a holder's name or number
    log = web_process["log"].read_text()
    assert "POST /gate/scan.json" in log
    for name, _, number in venue.holders.values():
        assert number not in log and name not in log
    web_process["proc"].send_signal(signal.SIGTERM)
    assert web_process["proc"].wait(timeout=30) == 0
