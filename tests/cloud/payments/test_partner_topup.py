"""A partner tops up its prepaid balance online in the partner portal, against the payment
sandbox as a real process, on SQLite and PostgreSQL: the amount typed is checked (named in
the refusal, nothing stored), the page shows the provider's QR code, the provider's signed
notification credits the balance once, and another partner finds no such top-up. The waits
are the sandbox's own (/_sandbox/wait), never a sleep."""

from __future__ import annotations

import re
from unittest import mock

import sqlalchemy as sa

from cloud.channels import accounts
from cloud.ledger.journal import trial_balance
from cloud.ledger.partners import add_portal_user, create_partner
from cloud.payments.tables import payments
from cloud.sales.tables import orders
from cloud.staff import staff as staff_module
from cloud.staff.staff import create_staff
from sync.timeutil import utcnow
from tests.cloud.pagekit import PASSWORD, _hashed, portal_client, sign_in, text

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _post(client, path: str, data: dict):
    token = _CSRF.search(text(client.get("/partner/top-up"))).group(1)
    return client.post(path, data={**data, "csrf_token": token})


def test_a_partner_tops_up_online_and_the_notification_credits_its_balance(hub_server,
                                                                          sandbox):
    app = hub_server
    with app.extensions["db"].begin() as conn:
        mine = create_partner(conn, "TRAVEL", "Travel Co", "distributor", 7, "test", utcnow())
        other = create_partner(conn, "AGENT", "Agent Co", "agent", 7, "test", utcnow())
        with mock.patch("cloud.ledger.partners.hash_password", _hashed):
            add_portal_user(conn, mine, "travel-user", "Wang Fang", PASSWORD, "test", utcnow())
            add_portal_user(conn, other, "agent-user", "Zhao Lei", PASSWORD, "test", utcnow())
        with mock.patch.object(staff_module, "hash_password", _hashed):
            create_staff(conn, "sales-user", PASSWORD, "sales", actor="test")
    client = portal_client(app, "travel-user")
    assert 'id="top-up-online"' in text(client.get("/partner/account"))
    form = text(client.get("/partner/top-up"))
    assert 'value="wechat"' in form and 'value="alipay"' in form and 'value="offline"' not in form
    for data, words in (({"amount": "12.345", "method": "wechat"}, "Amount:"),
                        ({"amount": "0", "method": "wechat"}, "0.01 up to"),
                        ({"amount": "500", "method": "offline"}, "Payment method:")):
        refused = _post(client, "/partner/top-up", data)
        assert refused.status_code == 400 and words in text(refused), data
    with app.extensions["db"].connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == 0

    r = _post(client, "/partner/top-up", {"amount": "500.00", "method": "wechat"})
    page = text(r)
    assert r.status_code == 200 and "<svg" in page and "waiting for payment" in page
    with app.extensions["db"].connect() as conn:
        o = conn.execute(sa.select(orders)).one()
        p = conn.execute(sa.select(payments).where(payments.c.order_id == o.id)).one()
    assert (o.kind, o.buyer, o.total, p.state) == ("topup", f"partner:{mine}", 50000, "pending")
    assert portal_client(app, "agent-user").get(f"/partner/top-up/{o.number}").status_code == 404

    sandbox.control("POST", f"/_sandbox/pay/{p.out_trade_no}", json={"result": "pay"})
    sandbox.wait(p.out_trade_no, acked=1, settled=1)
    shown = text(client.get(f"/partner/top-up/{o.number}"))
    assert 'data-state="paid"' in shown and 'id="credited"' in shown
    # the page asked again after the payment offers nothing to pay
    again = _post(client, f"/partner/top-up/{o.number}/pay", {"method": "wechat"})
    assert again.status_code == 303
    with app.extensions["db"].connect() as conn:
        assert accounts.balances(conn, mine)["prepaid"] == 50000
        assert accounts.balances(conn, other)["prepaid"] == 0
        assert trial_balance(conn) == {"CNY": 0}
    account = text(client.get("/partner/account"))
    assert "500.00 CNY" in account and "top-up paid online" in account
    assert p.out_trade_no in account
    staff = app.test_client()
    sign_in(staff, "sales-user")
    order_page = text(staff.get(f"/orders/{o.number}"))
    assert "topped up online" in order_page and "succeeded" in order_page
