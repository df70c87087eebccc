"""The staff pages served by a real `wicket-hub serve` process (gunicorn, two workers), over
HTTP: with requests, and in headless Chromium."""

from __future__ import annotations

import json
import re
import signal
import stat
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from cloud.catalog.events import create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.db import init_db, make_engine
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory.sessions import create_session
from cloud.sales.tickets import issue_ticket
from cloud.staff.staff import create_staff
from sync.timeutil import utcnow
from tests.e2e.test_hub_process import serving_hub

PASSWORD = "correct horse battery"


@pytest.fixture
def hub_pages(tmp_path):
    db = tmp_path / "hub.db"
    url = f"sqlite:///{db}"
    init_db(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "North Stand")
        create_staff(conn, "chen", PASSWORD, "admin", actor="test")
        start = utcnow() + timedelta(days=1)
        session = create_session(conn, create_event(conn, "G", "Games"), venue, "Final", start,
                                 start + timedelta(hours=2))
        ticket = issue_ticket(conn, session_id=session)
    engine.dispose()
    with serving_hub(url) as (base, proc):
        yield base, venue, db, proc, ticket


def token_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_sign_in_and_open_pages_on_a_real_hub_process(hub_pages):
    base, venue, db, proc, _ticket = hub_pages
    secret = Path(f"{db}.secret")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    web = requests.Session()
    r = web.post(f"{base}/login", data={"username": "chen", "password": PASSWORD,
                                        "csrf_token": token_of(web.get(f"{base}/login").text)},
                 allow_redirects=False, timeout=30)
    assert r.status_code == 303
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # two workers, one secret: every request is signed in, whichever worker answers it
    for _ in range(8):
        page = web.get(f"{base}/venues/{venue}", allow_redirects=False, timeout=30)
        assert page.status_code == 200 and "North Stand" in page.text
    assert web.post(f"{base}/venues", data={"code": "X", "name": "X"}, timeout=30
                    ).status_code == 400
    assert requests.get(f"{base}/venues", allow_redirects=False, timeout=30).status_code == 303
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_in_a_browser_sign_in_import_seats_register_an_appliance_and_read_the_codes(
        hub_pages, tmp_path):
    import cv2
    from playwright.sync_api import sync_playwright
    from zxingcpp import read_barcodes

    base, venue, _db, _proc, ticket = hub_pages
    csv = tmp_path / "seats.csv"
    csv.write_text("level,zone,row,number,category\n"
                   + "".join(f"L1,A,1,{n},std\n" for n in range(1, 21)), encoding="utf-8")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/venues/{venue}")
        assert "/login" in page.url and "登录" in page.content()
        page.fill("input[name=username]", "chen")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.stack button[type=submit]")
        page.wait_for_url(f"{base}/venues/{venue}")
        page.screenshot(path=shots / "venue.png", full_page=True)
        page.set_input_files("input[name=file]", str(csv))
        page.click("form[enctype] button")
        page.wait_for_selector("p.flash.ok")
        assert "新增 20 个" in page.inner_text("p.flash.ok")
        page.screenshot(path=shots / "imported.png", full_page=True)
        page.goto(f"{base}/appliances")
        page.fill("input[name=name]", "北门主机")
        page.click("form.row:has(input[name=name]) button")
        page.wait_for_selector("#enroll-qr svg")
        payload = page.inner_text("#enroll-payload")
        page.locator("#enroll-qr").screenshot(path=shots / "enroll-qr.png")
        page.screenshot(path=shots / "token.png", full_page=True)
        page.goto(f"{base}/tickets?number={ticket.number}")
        # the code is a bearer credential: a later visit shows it only on an audited reveal
        page.wait_for_selector("#no-qr")
        page.fill("#reveal-form input[name=reason]", "顾客遗失了票码")
        page.click("#reveal-form button")
        page.wait_for_selector("#revealed figure.qr svg")
        page.locator("#revealed figure.qr").screenshot(path=shots / "ticket-qr.png")
        browser.close()
    # the revealed QR code reads back as the ticket's signed code
    assert [b.text for b in read_barcodes(cv2.imread(str(shots / "ticket-qr.png")))] == \
        [ticket.code]
    assert json.loads(payload)["hub"] == base + "/"
    decoded = [b.text for b in read_barcodes(cv2.imread(str(shots / "enroll-qr.png")))]
    assert decoded == [payload]
    assert all((shots / n).stat().st_size > 1000 for n in ("venue.png", "imported.png",
                                                            "token.png"))
