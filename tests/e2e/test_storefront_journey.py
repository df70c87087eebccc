"""A buyer on the public site, in a real browser (Debian's Chromium, zh-CN, a phone's
screen), against real processes: ``wicket-hub serve``, its worker and messenger, the sandbox
SMS gateway, the identity verification sandbox and the payment sandbox.

The buyer registers with the SMS code the gateway received, names who they are and adds a
companion (both verified by the sandbox through the worker), picks two adjacent seats on the
map, names one person per ticket, holds them, pays on the payment sandbox's page and sees the
tickets once the sandbox's signed notification has landed. The QR code on the ticket page,
decoded from a screenshot with the gate cameras' decoder, is admitted by an appliance synced
from this hub. Then the buyer asks for a refund of one ticket, a supervisor approves it over
the staff API, and after the next sync that code is refused at the gate while the other
stays used.

Each step's screenshot is written to ``$WICKET_SCREENSHOTS`` when it is set (the README's
pictures: ``WICKET_SCREENSHOTS=docs/screenshots``), else to the test's own folder.
"""

from __future__ import annotations

import os
import re
import uuid
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
import sqlalchemy as sa

from cloud.buyers.idcheck_wire import sandbox_settings as idcheck_settings
from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.venues import add_gate, add_zone, create_venue
from cloud.core.db import init_db, make_engine
from cloud.fleet import appliances
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session, edit_session
from cloud.sales.tables import refund_requests
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from drivers.camera import zxing_decode
from edge.reasons import Reason
from sync.sample import resident_id
from sync.timeutil import utcnow
from tests.cloud.buyers.conftest import Idcheck, start_idcheck
from tests.cloud.messaging.conftest import API_KEY, KEYS, start_gateway
from tests.cloud.payments.conftest import sandbox, stop  # noqa: F401 (the sandbox fixture)
from tests.e2e.buyer_processes import HubCommand
from tests.e2e.conftest import HubProcess, wait_for

MOBILE = "13900139001"
ME = ("王芳", "resident_id", resident_id("44010119920815123"))
FRIEND = ("赵磊", "resident_id", resident_id("32010219880202345"))
SEATS = "level,zone,row,number,category\n" + "".join(
    f"L1,A,1,{n},std\n" for n in range(1, 9)) + "".join(f"L1,A,2,{n},vip\n" for n in range(1, 9))
WAIT_S = 120
PASSWORD = "Harbour-lamp-2026"


def _set_up_hub(url: str) -> dict:
    init_db(url)
    engine = make_engine(url)
    start = utcnow() + timedelta(hours=2)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "奥体中心体育场")
        add_zone(conn, venue, "A", "北看台")
        add_gate(conn, venue, "G1", "1 号门", ["A"])
        assert import_seats_csv(conn, venue, SEATS).ok
        event = create_event(conn, "CUP", "城市足球杯", discipline="足球")
        session = create_session(conn, event, venue, "决赛", start, start + timedelta(hours=2),
                                 start - timedelta(hours=3))
        add_price_tier(conn, session, "STD", "看台票", 38000, seat_category="std")
        add_price_tier(conn, session, "VIP", "贵宾票", 88000, seat_category="vip")
        edit_session(conn, session, real_name=True)
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
        boss = create_staff(conn, "supervisor", PASSWORD, "ticketing", actor="test")
        made = {"session": session, "supervisor": create_token(conn, boss, "desk", "test")[1],
                "appliance_token": appliances.register(conn, venue, "1 号门闸机").token}
    engine.dispose()
    return made


class Shots:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def take(self, page, name: str) -> Path:
        path = self.folder / f"storefront-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def store(tmp_path, sandbox):  # noqa: F811
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    made = _set_up_hub(url)
    hub = HubProcess(url)
    payments = {f"WICKET_HUB_{k}": v for k, v in sandbox.settings.items()}
    with ExitStack() as stack:
        gateway = start_gateway(tmp_path, receipts_url=f"{hub.url}/api/v1/messaging/receipts")
        stack.callback(stop, gateway.process)
        (tmp_path / "idcheck").mkdir()
        process, port = start_idcheck(tmp_path / "idcheck")
        stack.callback(stop, process)
        verifier = {f"WICKET_HUB_{k}": v for k, v in
                    idcheck_settings(tmp_path / "idcheck" / "published").items()}
        hub.env.update({**KEYS, **payments, "WICKET_HUB_PUBLIC_URL": hub.url})
        hub.start()
        stack.callback(hub.stop)
        worker = HubCommand(url, ["worker", "--poll", "0.1"], {
            **verifier, **payments, "WICKET_HUB_PUBLIC_URL": hub.url}, tmp_path / "worker.log")
        stack.callback(worker.stop)
        messenger = HubCommand(url, ["messenger", "--poll", "0.1"], {
            "WICKET_HUB_SMS_GATEWAY_URL": gateway.url, "WICKET_HUB_SMS_API_KEY": API_KEY,
            "WICKET_HUB_PUBLIC_URL": hub.url}, tmp_path / "messenger.log")
        stack.callback(messenger.stop)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        idcheck = Idcheck(f"http://127.0.0.1:{port}", {})
        for name, _, number in (ME, FRIEND):
            idcheck.register(number, name)
        shots = os.environ.get("WICKET_SCREENSHOTS")
        yield {"hub": hub, "gateway": gateway, "engine": engine, "sandbox": sandbox,
               "shots": Shots(Path(shots) if shots else tmp_path / "screenshots"), **made}


def _code_sent(store: dict, after: int = 0) -> str:
    """The six-digit code of the latest SMS to the buyer (past the first ``after``)."""
    def found():
        texts = [r["text"] for r in store["gateway"].control("GET", "/_sandbox/received")
                 ["received"] if r["to"] == MOBILE][after:]
        return texts and re.search(r"\b(\d{6})\b", texts[-1]).group(1)
    return wait_for(found, WAIT_S, "the code's SMS", every=0.2)


def _reload_until(page, selector: str, text: str, what: str) -> None:
    def shown() -> bool:
        page.reload(wait_until="load")
        return text in page.locator(selector).inner_text()
    wait_for(shown, WAIT_S, what, every=0.5)


def _person(page, prefix: str, person: tuple[str, str, str]) -> None:
    page.fill(f"#{prefix}-name", person[0])
    page.select_option(f"#{prefix}-doc-type", person[1])
    page.fill(f"#{prefix}-doc-number", person[2])


def register_and_verify(page, store: dict, shop: str) -> None:
    shots = store["shots"]
    page.goto(f"{shop}/", wait_until="load")
    shots.take(page, "1-home")
    page.click("text=我的账户")
    page.click("text=用手机号注册")
    page.fill("#mobile", MOBILE)
    page.click("form[action$='/register/code'] button")  # 发送验证码
    page.fill("#code", _code_sent(store))
    page.click("form[action$='/register'] button")  # 注册
    page.wait_for_url(re.compile(r".*/shop/zh/account.*"))
    _person(page, "me", ME)
    page.click("form[action$='/account/identity'] button")  # 提交实名认证
    _person(page, "c", FRIEND)
    page.click("form[action$='/account/companions'] button")  # 添加
    _reload_until(page, "#verification", "已认证", "the buyer's verification")
    _reload_until(page, "#companions", "已认证", "the companion's verification")
    shots.take(page, "2-account-verified")


def buy_two_adjacent_seats(page, store: dict, shop: str) -> str:
    shots = store["shots"]
    page.goto(f"{shop}/sessions/{store['session']}", wait_until="load")
    shots.take(page, "3-session")
    page.click("text=北看台")
    free = page.locator("#seat-svg rect.pickable")
    first = free.first.get_attribute("data-seat")
    page.click(f"rect[data-seat='{first}']")
    page.click(f"rect[data-seat='{int(first) + 1}']")
    shots.take(page, "4-seats-picked")
    page.click("#pick-form button")  # 用这些座位继续
    page.select_option("#holder_0", "me")
    page.select_option("#holder_1", index=2)  # the companion, after "choose" and me
    shots.take(page, "5-checkout")
    page.click("form[action$='/checkout'] button")  # 锁定这些座位
    page.wait_for_url(re.compile(r".*/shop/zh/orders/\w+$"))
    number = page.url.rsplit("/", 1)[1]
    page.click("input[name=method][value=wechat] + button")  # pay with WeChat Pay
    shots.take(page, "6-pay")
    pay_url = page.locator("#pay-link").get_attribute("href")
    # the buyer pays on the provider's page (the sandbox's), then comes back
    paying = page.context.new_page()
    paying.goto(pay_url, wait_until="load")
    paying.click("#pay")
    paying.close()
    page.locator("#order-state").filter(has_text="已支付").wait_for(timeout=WAIT_S * 1000)
    shots.take(page, "7-tickets")
    return number


def codes_from_screenshot(page, store: dict) -> list[str]:
    """Each ticket's QR code, read from a screenshot of its card by the cameras' decoder."""
    codes = []
    for card in page.locator("li.ticket").all():
        png = card.screenshot()
        gray = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
        found = zxing_decode(gray)
        assert len(found) == 1, found
        codes.append(found[0])
    return codes


def ask_refund_of_first(page, store: dict, number: str, shop: str) -> None:
    page.goto(f"{shop}/orders/{number}", wait_until="load")
    page.click("text=申请退款")
    page.locator("input[name=ticket]").first.check()
    page.click("form[method=get] button")  # 查看退款金额
    assert "380.00 CNY" in page.locator("#refund-amount").inner_text()
    store["shots"].take(page, "8-refund")
    page.click("form[method=post][action$='/refund'] button")  # 提交退款申请
    page.wait_for_url(re.compile(r".*refund=asked$"))


def test_a_buyer_buys_on_the_site_walks_in_and_a_refunded_code_is_refused(
        store, make_appliance):
    from playwright.sync_api import sync_playwright

    hub = store["hub"]
    shop = f"{hub.url}/shop/zh"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 390,
                                                                    "height": 844})
            context.set_default_timeout(WAIT_S * 1000)
            page = context.new_page()
            register_and_verify(page, store, shop)
            number = buy_two_adjacent_seats(page, store, shop)
            codes = codes_from_screenshot(page, store)
            assert len(set(codes)) == 2

            box = make_appliance()
            assert box.cli("enroll", "--hub", hub.url, "--token",
                           store["appliance_token"]).returncode == 0
            assert box.cli("sync", "--once").returncode == 0
            box.add_lane()
            assert box.scan(codes[1]).reason is Reason.OK  # the companion walks in

            ask_refund_of_first(page, store, number, shop)  # the buyer cannot come
        finally:
            browser.close()
    with store["engine"].connect() as conn:
        asked = conn.execute(sa.select(refund_requests.c.id)).scalar_one()
    r = requests.post(f"{hub.url}/api/v1/refunds/{asked}/approve", json={"note": "ok"},
                      headers={"Authorization": f"Bearer {store['supervisor']}",
                               "Idempotency-Key": str(uuid.uuid4())}, timeout=WAIT_S)
    assert r.status_code == 200, r.text
    assert box.cli("sync", "--once").returncode == 0
    refunded, used = (box.scan(c).reason for c in codes)
    assert refunded is Reason.REVOKED, refunded
    assert used is Reason.ALREADY_ENTERED
