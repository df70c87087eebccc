"""The Devices page in Chromium against a real `wicket-edge web` process: a turnstile's form
shows only its chosen driver's fields (and no JSON), and a handheld's pairing code appears with
its QR code."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect, sync_playwright

from edge import db as db_mod
from tests.edge.web.test_browser import DEADLINE_S, web_process  # noqa: F401  (the process)


def test_a_turnstile_form_per_driver_and_a_pairing_code_in_a_real_browser(
        web_process, tmp_path):  # noqa: F811
    base = web_process["base"]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = browser.new_page(locale="en-GB", viewport={"width": 1280, "height": 900})
            page.set_default_timeout(DEADLINE_S * 1000)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(base + "/")
            page.fill("input[name=setup_code]", web_process["code"])
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", "Harbour-lamp-2026")
            page.fill("input[name=password2]", "Harbour-lamp-2026")
            page.click("button[type=submit].primary")
            expect(page).to_have_url(re.compile(r"/dashboard$"))

            page.goto(base + "/devices/")
            form = page.locator("#add-device")
            page.select_option("#add-device select[name=kind]", "qr_camera")
            expect(form.locator(".turnstile-settings")).to_be_hidden()
            expect(form.locator(".json-settings")).to_be_visible()
            page.select_option("#add-device select[name=kind]", "turnstile")
            expect(form.locator(".json-settings")).to_be_hidden()
            expect(form.locator("#settings-modbus")).to_be_visible()
            expect(form.locator("#settings-onetech")).to_be_hidden()
            page.screenshot(path=shots / "1-turnstile-modbus.png", full_page=True)
            page.select_option("#add-device select[name=model]", "usb_relay")
            expect(form.locator("#settings-usb_relay")).to_be_visible()
            expect(form.locator("#settings-modbus")).to_be_hidden()
            page.fill("#add-device input[name=id]", "N1-RELAY")
            page.fill("#add-device input[name=connection]", "/dev/ttyUSB0")
            page.select_option("#add-device select[name='setting.usb_relay.channel_a']", "2")
            page.click("#add-device button[type=submit]")
            expect(page).to_have_url(re.compile(r"/devices/N1-RELAY$"))

            page.goto(base + "/devices/")
            page.fill("#pair-handheld input[name=name]", "Gate 1 phone")
            page.click("#pair-handheld button[type=submit]")
            expect(page.locator("#pairing-code")).to_have_text(
                re.compile(r"^[A-Z2-9]{4}-[A-Z2-9]{4}$"))
            expect(page.locator("#pairing-qr svg")).to_be_visible()
            page.screenshot(path=shots / "2-pairing-code.png", full_page=True)
            assert errors == []
        finally:
            browser.close()
    conn = db_mod.connect(web_process["box"]["db"])
    try:
        config = conn.execute("SELECT config FROM devices WHERE id = 'N1-RELAY'").fetchone()[0]
    finally:
        conn.close()
    assert json.loads(config) == {"model": "usb_relay", "port": "/dev/ttyUSB0", "channel_a": 2}
