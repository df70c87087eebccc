"""The handheld page in headless Chromium against `wicket-edge web` (gunicorn) in a real process:
pair, scan through the wedge field, see the verdict; lose the server, scan, get it back, and
the queued scans arrive once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from edge import handhelds
from edge.allowlist import apply_changes
from sync import sample
from sync.changes import parse_change
from sync.timeutil import utcnow
from tests.edge.handheld_app import write_config

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The web service as a real gunicorn process, stopped and started on the same port."""

    def __init__(self, config: Path, log: Path, *args: str):
        self.args = args  # more options for `wicket-edge web`
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = config
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.log, "a")  # noqa: SIM115 - kept open for the process's life
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "--config", str(self.config), "web",
             "--bind", f"127.0.0.1:{self.port}", "--workers", "2", *self.args],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if requests.get(f"{self.url}/handheld/", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=60)
        self.proc = None
        raise AssertionError("the web service did not come up: " + self.log.read_text())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=60) == 0
        self.proc = None


@pytest.fixture
def server(tmp_path, conn, db_path, vault, holder_key, hub_key):
    venue = sample.build(hub_key, utcnow(), tickets=20)
    apply_changes(conn, vault, [parse_change(c) for c in venue.changes])
    config = tmp_path / "edge.toml"
    write_config(config, db_path, holder_key)
    s = Server(config, tmp_path / "web.log")
    s.start()
    yield s, venue
    if s.proc is not None:
        s.stop()


def wait_for(predicate, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_pair_scan_go_offline_and_the_queue_arrives_once(server, conn, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    srv, venue = server
    code = handhelds.create_pairing(conn, "Gate 1 phone", ["N1", "N2"], actor="admin").code
    shots = tmp_path / "screenshots"
    shots.mkdir()
    holder_numbers = [number for _, _, number in venue.holders.values()]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 412, "height": 860}, locale="en-GB")
        page = context.new_page()
        page.goto(f"{srv.url}/handheld/")
        page.fill("#pair-code", code.lower())
        page.click("#pair-form button")
        expect(page.locator("#scanner")).to_be_visible(timeout=30_000)
        expect(page.locator("#lane option")).to_have_count(2)
        assert page.evaluate("localStorage.getItem('wicket.handheld.token')")
        page.select_option("#lane", "N2")
        page.screenshot(path=shots / "1-paired.png")

        # a wedge scanner types the code into the focused field and presses Enter
        assert page.evaluate("document.activeElement.id") == "scan-input"
        page.keyboard.type(venue.tickets[1002].code)
        page.keyboard.press("Enter")
        verdict = page.locator("#verdict")
        expect(verdict).to_have_class("verdict green", timeout=30_000)
        expect(page.locator("#verdict-words")).to_have_text("Valid ticket: go ahead")
        page.screenshot(path=shots / "2-valid.png")
        page.keyboard.type(venue.tickets[1002].code)
        page.keyboard.press("Enter")
        expect(verdict).to_have_class("verdict orange", timeout=30_000)
        expect(page.locator("#verdict-facts")).to_contain_text("First entry")
        page.screenshot(path=shots / "3-used.png")
        realname = venue.named["other_holder"]  # a real-name ticket: its holder shown masked
        page.keyboard.type(venue.tickets[realname].code)
        page.keyboard.press("Enter")
        expect(page.locator("#verdict-facts")).to_contain_text("*", timeout=30_000)

        # the appliance goes away: scans are kept, marked as not checked
        srv.stop()
        offline = [venue.tickets[1006].code, venue.tickets[1010].code, venue.tickets[1006].code]
        for i, c in enumerate(offline):
            page.keyboard.type(c)
            page.keyboard.press("Enter")
            expect(page.locator("#queue-count")).to_have_text(
                f"{i + 1} scan{'s' if i else ''} waiting to be sent", timeout=30_000)
        expect(verdict).to_have_class("verdict queued")
        page.click("#lang")
        expect(page.locator("#verdict-words")).to_have_text("已保存，尚未验票")
        page.screenshot(path=shots / "4-offline-zh.png")
        queued = page.evaluate("JSON.parse(localStorage.getItem('wicket.handheld.queue'))")
        assert [q["data"] for q in queued] == offline

        # back: the page sends its queue by itself, in order, and each scan counts once
        srv.start()
        expect(page.locator("#queue")).to_be_hidden(timeout=60_000)
        expect(page.locator("#batch-report")).to_contain_text("已验证 3 条离线扫码", timeout=30_000)
        page.screenshot(path=shots / "5-back-zh.png")
        # the answer to the batch was lost: the page sends the same scans again
        page.evaluate("q => localStorage.setItem('wicket.handheld.queue', JSON.stringify(q))",
                      queued)
        page.reload()
        expect(page.locator("#scanner")).to_be_visible(timeout=30_000)
        expect(page.locator("#queue")).to_be_hidden(timeout=60_000)
        # a queued scan the appliance will never take (a lane this handheld may not scan
        # for) is kept aside and shown; the good one behind it still arrives
        stray = {**queued[0], "client_scan_id": "stray-0001", "lane": "S1",
                 "data": venue.tickets[1014].code}
        good = {**queued[0], "client_scan_id": "good-00001", "data": venue.tickets[1018].code}
        page.evaluate("q => localStorage.setItem('wicket.handheld.queue', JSON.stringify(q))",
                      [stray, good])
        page.reload()
        expect(page.locator("#rejected")).to_contain_text("S1", timeout=60_000)
        expect(page.locator("#queue")).to_be_hidden(timeout=60_000)
        rejected = page.evaluate("JSON.parse(localStorage.getItem('wicket.handheld.rejected'))")
        assert [(r["scan"]["client_scan_id"], r["error"]) for r in rejected] == [
            ("stray-0001", "lane_not_allowed")]
        page.screenshot(path=shots / "6-rejected-zh.png")

        # a ticket number: read by the scanner it is no code; typed, this gate takes none
        number = venue.tickets[1019].number
        page.fill("#scan-input", number)
        page.press("#scan-input", "Enter")
        expect(page.locator("#verdict-detail")).to_have_text("不是票码", timeout=30_000)
        page.fill("#number-input", number)
        page.press("#number-input", "Enter")
        expect(page.locator("#verdict-detail")).to_have_text("本入口不接受凭票号入场",
                                                             timeout=30_000)
        expect(verdict).to_have_class("verdict red")
        texts = page.content()
        browser.close()

    rows = conn.execute(
        "SELECT e.ticket_id, e.reason, h.client_scan_id FROM handheld_scans h "
        "JOIN entries e ON e.id = h.entry_id ORDER BY e.seq").fetchall()
    assert [(r[0], r[1]) for r in rows[:6]] == [
        (1002, "OK"), (1002, "ALREADY_ENTERED"), (realname, "OK"),
        (1006, "OK"), (1010, "OK"), (1006, "ALREADY_ENTERED")]
    assert [r[2] for r in rows[3:6]] == [q["client_scan_id"] for q in queued]
    assert rows[6] == (1018, "OK", "good-00001")
    assert [r[:2] for r in rows[7:]] == [(None, "UNKNOWN"), (None, "UNKNOWN")]
    assert conn.execute("SELECT scan_kind FROM entries WHERE reason = 'UNKNOWN' ORDER BY seq"
                        ).fetchall() == [("qr",), ("manual",)]
    assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 9
    assert conn.execute("SELECT state FROM devices").fetchone() == ("up",)  # heartbeats
    log = (tmp_path / "web.log").read_text()
    assert "POST /api/v1/scans" in log  # the access log of the real server
    for number in holder_numbers:
        assert number not in texts and number not in log
    assert len(list(shots.glob("*.png"))) == 6


def test_a_verdict_shows_its_time_and_gives_way_to_ready_after_the_appliances_seconds(
        server, conn):
    import re

    from playwright.sync_api import expect, sync_playwright

    srv, venue = server
    code = handhelds.create_pairing(conn, "Gate 1 phone", ["N1"], actor="admin").code
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context(locale="en-GB").new_page()
            page.clock.install()
            page.goto(f"{srv.url}/handheld/")
            page.fill("#pair-code", code)
            page.click("#pair-form button")
            expect(page.locator("#scanner")).to_be_visible(timeout=30_000)
            assert page.evaluate("localStorage.getItem('wicket.handheld.fade')") == "8"
            page.keyboard.type(venue.tickets[1002].code)
            page.keyboard.press("Enter")
            expect(page.locator("#verdict")).to_have_class("verdict green", timeout=30_000)
            expect(page.locator("#verdict-at")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
            page.clock.run_for(7000)
            expect(page.locator("#verdict")).to_have_class("verdict green")
            page.clock.run_for(1500)  # verdict_fade_s is 8 s by default
            expect(page.locator("#verdict")).to_have_class("verdict idle")
            expect(page.locator("#verdict-words")).to_have_text("Ready to scan")
            expect(page.locator("#verdict-at")).to_have_text("")
        finally:
            browser.close()
