"""The box office takes an online payment by QR code, against the payment sandbox as a real
process, on SQLite and PostgreSQL: the order holds its seats while the page shows the code;
the provider's signed notification pays it; the page's refresh (or its poll of the order's
state) then goes to the receipt, which shows the codes once. The waits are the sandbox's own
(/_sandbox/wait), never a sleep."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.audit import audit_log
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.payments.tables import payments
from cloud.sales.tables import orders, tickets
from cloud.staff.staff import create_staff
from sync.timeutil import utcnow
from tests.cloud.pagekit import PASSWORD, post, sign_in, text

SEATS = "level,zone,row,number,category\n" + "".join(f"L1,A,1,{n},std\n" for n in range(1, 5))


def _shop(app) -> int:
    start = utcnow() + timedelta(days=3)
    with app.extensions["db"].begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "North Stand")
        assert import_seats_csv(conn, venue, SEATS).ok
        session = create_session(conn, create_event(conn, "G", "Games"), venue, "Final",
                                 start, start + timedelta(hours=2))
        add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
        create_staff(conn, "sales-user", PASSWORD, "sales", actor="test")
    return session


@pytest.mark.parametrize("name", ["wechat", "alipay"])
def test_a_booth_sale_by_qr_code_is_paid_by_the_providers_notification(hub_server, sandbox,
                                                                      name):
    app = hub_server
    session = _shop(app)
    clerk = app.test_client()
    sign_in(clerk, "sales-user")
    r = post(clerk, f"/box-office/{session}/order",
             {"seats": "L1-1-1, L1-1-2", "payment": name}, page=f"/box-office/{session}")
    page = text(r)
    assert r.status_code == 200 and 'id="pay-qr"' in page and "<svg" in page
    with app.extensions["db"].connect() as conn:
        o = conn.execute(sa.select(orders)).one()
        p = conn.execute(sa.select(payments).where(payments.c.order_id == o.id)).one()
    assert (o.state, o.total, p.provider, p.state) == ("pending_payment", 76000, name, "pending")
    code = re.search(r'<code id="code-url">([^<]+)</code>', page).group(1)
    assert code.endswith(p.out_trade_no)
    assert clerk.get(f"/orders/{o.number}/state").get_json()["state"] == "pending_payment"
    # the seats are held while the buyer pays
    pos = text(clerk.get(f"/box-office/{session}"))
    assert 'data-seat="L1-1-1" data-status="held"' in pos.replace("\n     ", " ")
    # a refresh before the buyer pays asks the provider and shows the same code again
    again = post(clerk, f"/orders/{o.number}/pay", {"method": name}, page=f"/orders/{o.number}")
    assert again.status_code == 200 and code in text(again)
    sandbox.control("POST", f"/_sandbox/pay/{p.out_trade_no}", json={"result": "pay"})
    sandbox.wait(p.out_trade_no, acked=1, settled=1)
    state = clerk.get(f"/orders/{o.number}/state").get_json()
    assert state == {"number": o.number, "state": "paid",
                     "receipt": f"/orders/{o.number}/receipt"}
    done = post(clerk, f"/orders/{o.number}/pay", {"method": name}, page=f"/orders/{o.number}")
    assert done.status_code == 303 and done.headers["Location"] == f"/orders/{o.number}/receipt"
    receipt = text(clerk.get(done.headers["Location"]))
    assert receipt.count('class="qr ticket-code"') == 2
    with app.extensions["db"].connect() as conn:
        issued = conn.execute(sa.select(sa.func.count()).select_from(tickets)
                              .where(tickets.c.order_id == o.id)).scalar()
        audit = conn.execute(sa.select(audit_log.c.after).where(
            audit_log.c.action == "boxoffice.payment")).scalar_one()
    assert issued == 2
    assert audit["method"] == name and audit["payment"] == p.out_trade_no
    order_page = text(clerk.get(f"/orders/{o.number}"))
    assert p.out_trade_no in order_page and "succeeded" in order_page
