"""The pairing QR code of the Devices page opens the handheld page with the code in the address's
fragment: headless Chromium against `wicket-edge web` in a real process pairs from it, and the
code leaves the address at once."""

from __future__ import annotations

from edge import handhelds
from tests.e2e.test_handheld_page import CHROMIUM, server  # noqa: F401  (the web process)


def test_opening_the_pairing_qr_codes_address_pairs_the_handheld(server, conn):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    srv, _venue = server
    code = handhelds.create_pairing(conn, "Gate 1 phone", ["N1"], actor="admin").code
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 412, "height": 860}, locale="en-GB")
        page.goto(f"{srv.url}/handheld/#code={code}")
        expect(page.locator("#scanner")).to_be_visible(timeout=30_000)
        expect(page.locator("#lane option")).to_have_count(1)
        assert page.evaluate("localStorage.getItem('wicket.handheld.token')")
        assert page.url == f"{srv.url}/handheld/"
        assert "Devices page, under Handhelds" in page.evaluate(
            "document.querySelector('[data-t=pair_help]').textContent")
        browser.close()
    assert [h["name"] for h in handhelds.list_handhelds(conn)] == ["Gate 1 phone"]
