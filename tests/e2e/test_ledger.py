"""The ledger end to end against real processes: the hub (``wicket-hub serve``), its worker
and a payment sandbox of this test's own (its statement lists only this test's trades).

A day of sales and refunds: three orders paid with WeChat Pay on the sandbox's page, each
told to the hub by its signed notification; a refund of one ticket asked for by customer
service and approved by a supervisor, sent by the worker and confirmed by the sandbox's
refund notification. Then ``wicket-hub settle`` makes the organiser's and the venue's
statements, which add up with the ledger, and ``wicket-hub reconcile`` matches the sandbox's
statement of the day — into which the sandbox planted a payment whose notification never
came, a wrong amount, a duplicate line and a refund the hub never asked for — and finds
exactly those four.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

import pytest
import requests
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.db import init_db, make_engine
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.ledger import chart, settlement
from cloud.ledger.journal import balance, trial_balance
from cloud.ledger.partners import add_rule, create_partner
from cloud.ledger.tables import recon_exceptions
from cloud.payments.keys import make_merchant_keys, sandbox_settings
from cloud.payments.tables import payment_refunds, payments
from cloud.sales.refunds import set_policy
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from sync.timeutil import utcnow
from tests.cloud.payments.conftest import Running, start_sandbox, stop
from tests.e2e.buyer_processes import HubCommand
from tests.e2e.conftest import ENV, ROOT, HubProcess, wait_for

PASSWORD = "Harbour-lamp-2026"
CHINA = timezone(timedelta(hours=8))
WAIT_S = 120  # generous: a loaded machine is slow, never wrong


def _set_up_hub(url: str) -> dict:
    init_db(url)
    engine = make_engine(url)
    now = utcnow()
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        zone = add_zone(conn, venue, "A", "Main Stand")
        rows = "".join(f"L1,A,1,{n},std\n" for n in range(1, 21))
        assert import_seats_csv(conn, venue, "level,zone,row,number,category\n" + rows).ok
        event = create_event(conn, "GAMES", "The Games")
        session = create_session(conn, event, venue, "Final", now + timedelta(days=10),
                                 now + timedelta(days=10, hours=3))
        tier = add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
        set_policy(conn, session, None, "none", 0, "test")
        organiser = create_partner(conn, "ORG", "Games Organiser", "organiser", 0, "test", now)
        hall = create_partner(conn, "OSC", "Olympic Sports Centre", "venue", 0, "test", now)
        for part, partner, bp, fixed, provider in (
                ("organiser", organiser, 0, 0, None), ("venue", hall, 1000, 100, None),
                ("platform", None, 500, 0, None), ("provider_fee", None, 60, 0, "wechat")):
            add_rule(conn, part=part, partner_id=partner, basis_points=bp,
                     fixed_per_ticket=fixed, effective_from=now, actor="test", now=now,
                     event_id=event if part == "organiser" else None, provider=provider)
        staff = {}
        for name, role in (("clerk", "sales"), ("service", "service"),
                           ("supervisor", "ticketing")):
            staff_id = create_staff(conn, name, PASSWORD, role, actor="test")
            staff[name] = {"Authorization":
                           f"Bearer {create_token(conn, staff_id, 'ledger', 'test')[1]}"}
    engine.dispose()
    return {"session": session, "zone": zone, "tier": tier, "staff": staff,
            "partners": {"organiser": organiser, "venue": hall}}


@pytest.fixture
def world(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    made = _set_up_hub(url)
    with ExitStack() as stack:
        merchant = make_merchant_keys(tmp_path / "merchant")
        process, port = start_sandbox(tmp_path)
        stack.callback(stop, process)
        settings = {**merchant, **sandbox_settings(tmp_path / "published"),
                    "PAYMENT_PROVIDERS": "offline,wechat", "PAYMENTS_TIMEOUT": "30"}
        sandbox = Running(f"http://127.0.0.1:{port}", settings)
        hub = HubProcess(url)
        env = {f"WICKET_HUB_{k}": v for k, v in settings.items()}
        hub.env.update({**env, "WICKET_HUB_PUBLIC_URL": hub.url})
        hub.start()
        stack.callback(hub.stop)
        worker = HubCommand(url, ["worker", "--poll", "0.1"],
                            {**env, "WICKET_HUB_PUBLIC_URL": hub.url}, tmp_path / "worker.log")
        stack.callback(worker.stop)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        yield {"url": url, "hub": hub, "engine": engine, "sandbox": sandbox, "env": env,
               "worker": worker, **made}


def _call(w: dict, method: str, path: str, who: str, **kw) -> dict:
    r = requests.request(method, w["hub"].url + path, timeout=WAIT_S, headers={
        **w["staff"][who], "Idempotency-Key": str(uuid.uuid4())}, **kw)
    assert r.status_code in (200, 201), r.text
    return r.json()


def _order_with_payment(w: dict, seats: int) -> tuple[dict, dict]:
    """An order of ``seats`` seats and its WeChat payment opened (the sandbox holds the
    trade, not yet paid): the order and the payment's answer (its QR code's text)."""
    order = _call(w, "POST", f"/api/v1/sessions/{w['session']}/orders", "clerk", json={
        "lines": [{"zone_id": w["zone"], "price_tier_id": w["tier"]}] * seats})
    paying = _call(w, "POST", f"/api/v1/orders/{order['number']}/payments", "clerk",
                   json={"provider": "wechat"})
    assert paying["qr_text"], paying
    return order, paying


def _pay(paying: dict) -> None:
    r = requests.post(paying["qr_text"], data={"result": "pay"}, timeout=WAIT_S)
    assert r.status_code == 200, r.text


def _order_state(w: dict, number: str) -> str:
    return _call(w, "GET", f"/api/v1/orders/{number}", "clerk")["state"]


def _trade_of(w: dict, number: str) -> str:
    with w["engine"].connect() as conn:
        return conn.execute(sa.text(
            "SELECT p.out_trade_no FROM payments p JOIN orders o ON o.id = p.order_id "
            "WHERE o.number = :n"), {"n": number}).scalar_one()


def _hub_command(w: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cloud.cli", "--db", w["url"], *args],
                          cwd=ROOT, env={**ENV, **w["env"]}, capture_output=True, text=True,
                          timeout=WAIT_S)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_a_day_of_sales_and_refunds_settles_and_reconciles_with_the_planted_differences(world):
    w = world
    # the first order's trade is opened first (the sandbox's statement faults take its
    # latest trade) and paid last, with its notification lost
    lost, lost_paying = _order_with_payment(w, 1)
    sold = []
    for seats in (2, 1):
        order, paying = _order_with_payment(w, seats)
        _pay(paying)
        sold.append(order)
    wait_for(lambda: all(_order_state(w, o["number"]) == "paid" for o in sold), WAIT_S)
    first = _call(w, "GET", f"/api/v1/orders/{sold[0]['number']}", "clerk")["tickets"][0]
    refund = _call(w, "POST", f"/api/v1/orders/{sold[0]['number']}/refunds", "service",
                   json={"tickets": [first], "reason": "cannot come"})
    _call(w, "POST", f"/api/v1/refunds/{refund['id']}/approve", "supervisor", json={})

    def refunded() -> bool:
        with w["engine"].connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(payment_refunds)
                                .where(payment_refunds.c.state == "succeeded")).scalar() == 1
    wait_for(refunded, WAIT_S)
    # the worker would in time ask the provider about a payment it never heard of: it stops
    # before that payment is made, so only the statement can tell
    assert w["worker"].stop() == 0, w["worker"].output()[-3000:]
    w["sandbox"].control("POST", "/_sandbox/faults", json={
        "faults": ["no_callback"], "out_trade_no": _trade_of(w, lost["number"])})
    _pay(lost_paying)
    assert _order_state(w, lost["number"]) == "pending_payment"

    settled = _hub_command(w, "settle")
    with w["engine"].connect() as conn:
        made = {s.partner_id: s for s in settlement.statements(conn)}
        for partner_id in w["partners"].values():
            s = made[partner_id]
            assert s.net == s.sales - s.refunds and s.net > 0, s
            assert s.net == balance(conn, chart.payable(partner_id)), s
        assert trial_balance(conn) == {"CNY": 0}
        paid_in = conn.execute(sa.select(sa.func.sum(payments.c.amount))
                               .where(payments.c.state == "succeeded")).scalar()
        assert paid_in == 3 * 38000
    assert f"{len(made)} statements" in settled

    last = _trade_of(w, sold[1]["number"])
    w["sandbox"].control("POST", "/_sandbox/faults", json={
        "faults": ["bill_wrong_amount", "bill_duplicate", "bill_unknown_refund"]})
    day = datetime.now(CHINA).date().isoformat()
    _hub_command(w, "reconcile", "--provider", "wechat", "--day", day)
    with w["engine"].connect() as conn:
        found = {(r.kind, r.entry, r.out_trade_no) for r in conn.execute(
            sa.select(recon_exceptions))}
    assert found == {("missing_in_ledger", "payment", _trade_of(w, lost["number"])),
                     ("amount_differs", "payment", last), ("duplicate", "payment", last),
                     ("unknown_refund", "refund", last)}, found
    # the same statement again finds nothing new
    again = _hub_command(w, "reconcile", "--provider", "wechat", "--day", day)
    assert "0 new exceptions" in again
