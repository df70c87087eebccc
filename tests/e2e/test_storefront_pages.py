"""The public site in a real browser against ``wicket-hub serve``: every page a buyer meets,
in both languages, on a 360-pixel-wide phone, checked by axe-core (the WCAG 2 A and AA
rules: labels, contrast, names, landmarks, focusable elements) and for its width — nothing
wider than the screen but the seat map, which scrolls inside its own box."""

from __future__ import annotations

import re

import pytest
import requests
import sqlalchemy as sa

from cloud.sales.orders import capture
from cloud.sales.tables import orders
from tests.cloud.buyers.buyerkit import last_code, new_buyer
from tests.cloud.storefront.shopkit import build_shop
from tests.e2e.test_hub_process import serving_hub

MOBILE = "13700137000"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _signed_in(base: str, engine) -> requests.Session:
    """A buyer signed in through the site's own forms (the code read from the outbox)."""
    new_buyer(engine, MOBILE)
    http = requests.Session()
    token = _CSRF.search(http.get(f"{base}/shop/en/sign-in", timeout=30).text).group(1)
    http.post(f"{base}/shop/en/sign-in/code", data={"mobile": MOBILE, "csrf_token": token},
              timeout=30)
    r = http.post(f"{base}/shop/en/sign-in", data={"mobile": MOBILE, "csrf_token": token,
                                                   "code": last_code(engine, MOBILE)},
                  timeout=30, allow_redirects=False)
    assert r.status_code == 303, r.text
    http.csrf = token
    return http


@pytest.fixture
def site(tmp_path, monkeypatch):
    from cloud.core.seal import create_key_file

    create_key_file(str(tmp_path / "data.key"))
    monkeypatch.setenv("WICKET_HUB_DATA_KEY", str(tmp_path / "data.key"))
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    shop = build_shop(url)
    with serving_hub(url) as (base, _proc):
        yield shop, base
    shop.engine.dispose()


def _pages(shop, base: str, http: requests.Session) -> list[str]:
    """Every kind of page, for one buyer with a waiting order and a paid one."""
    from cloud.catalog.tables import seats

    with shop.engine.connect() as conn:
        seat_ids = conn.execute(sa.select(seats.c.id).where(seats.c.zone_id == shop.zones["B"])
                                .order_by(seats.c.id)).scalars().all()
    made = []
    for seat in seat_ids[:2]:
        r = http.post(f"{base}/shop/en/sessions/{shop.final}/checkout",
                      data={"seat": seat, "csrf_token": http.csrf}, timeout=30,
                      allow_redirects=False)
        assert r.status_code == 303, r.text
        made.append(r.headers["Location"].rsplit("/", 1)[1])
    with shop.engine.begin() as conn:
        paid = conn.execute(sa.select(orders).where(orders.c.number == made[1])).one()
        capture(conn, paid.id, paid.total, "wechat", "tx-a11y")
    return ["/", "/search?q=Final", f"/search?date=2099-01-01&venue={shop.venue}",
            f"/events/{shop.event}", f"/sessions/{shop.final}", f"/sessions/{shop.heats}",
            f"/sessions/{shop.final}/zones/{shop.zones['A']}", "/sign-in", "/register",
            "/account", f"/sessions/{shop.final}/checkout?seat={seat_ids[2]}",
            f"/sessions/{shop.final}/checkout?zone={shop.zones['A']}&tier={shop.std}"
            "&quantity=2", f"/orders/{made[0]}", f"/orders/{made[1]}",
            f"/orders/{made[1]}/refund", "/news", "/faq", "/events/999999"]


def test_every_page_of_the_public_site_passes_axe_on_a_phone(site):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    shop, base = site
    http = _signed_in(base, shop.engine)
    paths = _pages(shop, base, http)
    axe, found, checked = Axe(), [], 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        try:
            context = browser.new_context(viewport={"width": 360, "height": 740},
                                          device_scale_factor=2, is_mobile=True)
            context.add_cookies([{"name": c.name, "value": c.value, "url": base}
                                 for c in http.cookies])
            page = context.new_page()
            for lang in ("zh", "en"):
                for path in paths:
                    url = f"{base}/shop/{lang}{path}"
                    page.goto(url, wait_until="load")
                    assert "/sign-in" not in page.url or path == "/sign-in", page.url
                    results = axe.run(page, options={"runOnly": {
                        "type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
                    found += [f"{url}: {v['id']} ({v['impact']}): {v['help']} — "
                              f"{[n['target'] for n in v['nodes']][:3]}"
                              for v in results.response["violations"]]
                    wide = page.evaluate(
                        "() => [...document.querySelectorAll('body *')]"
                        ".filter(e => !e.closest('.seatmap'))"
                        ".filter(e => e.getBoundingClientRect().right > 361)"
                        ".map(e => e.tagName + '.' + e.className).slice(0, 3)")
                    if wide:
                        found.append(f"{url}: wider than the phone: {wide}")
                    checked += 1
        finally:
            browser.close()
    assert checked == 2 * len(paths)
    assert not found, "\n".join(found)
