"""Orders over the staff tools' JSON API, paid at a booth or by a provider's signed
notification, on SQLite and PostgreSQL: the order is paid and its tickets issued in the
transaction that records the payment, once; money an order can no longer take is refunded
through the worker's job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.app import create_app
from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.db import init_db
from cloud.core.jobs import Tasks, jobs, run_one
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.payments.capturing import REFUND_JOB, place, refund_handler
from cloud.payments.checkout import start_payment
from cloud.payments.offline import OfflineProvider
from cloud.payments.providers import Shown
from cloud.payments.settings import make_providers, payment_settings
from cloud.payments.tables import payment_refunds, payments
from cloud.sales.orders import cancel_order, expire_order
from cloud.sales.tables import orders, tickets
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from sync.timeutil import utcnow
from tests.cloud.payments.test_notifications import wechat_notice

PASSWORD = "Harbour-lamp-2026"
SEATS = "level,zone,row,number,category\n" + "".join(f"L1,A,1,{n},std\n" for n in range(1, 5))


@pytest.fixture
def shop(hub_url, provider_side):
    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True, "SECRET_KEY": "t" * 32,
                      **provider_side.settings})
    engine = app.extensions["db"]
    start = utcnow() + timedelta(days=10)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        zone = add_zone(conn, venue, "A", "Zone A")
        assert import_seats_csv(conn, venue, SEATS).ok
        event = create_event(conn, "GAMES", "The Games")
        session = create_session(conn, event, venue, "Final", start, start + timedelta(hours=3))
        tier = add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
        auth = {}
        for role in ("sales", "ops"):
            staff_id = create_staff(conn, f"{role}-user", PASSWORD, role, actor="test")
            auth[role] = {"Authorization": f"Bearer {create_token(conn, staff_id, 't', 'test')[1]}"}
    yield app.test_client(), engine, session, (zone, tier), auth
    engine.dispose()


def _order(client, session, zone, auth, count=2, key=None):
    headers = {**auth["sales"], **({"Idempotency-Key": key} if key else {})}
    return client.post(f"/api/v1/sessions/{session}/orders", headers=headers,
                        json={"lines": [{"zone_id": zone[0], "price_tier_id": zone[1]}] * count})


def test_an_order_is_held_then_paid_at_the_booth_once(shop):
    client, engine, session, zone, auth = shop
    made = _order(client, session, zone, auth, key="order-1")
    assert made.status_code == 201, made.get_json()
    order = made.get_json()
    assert order["state"] == "pending_payment" and order["total"] == 76000
    assert [line["state"] for line in order["lines"]] == ["held", "held"]
    again = _order(client, session, zone, auth, key="order-1")  # a retry holds nothing more
    assert again.get_json() == order and again.headers["Idempotent-Replayed"] == "true"
    assert client.post(f"/api/v1/orders/{order['number']}/payments", headers=auth["ops"],
                       json={"provider": "offline"}).status_code == 403  # ops do not sell
    paid = client.post(f"/api/v1/orders/{order['number']}/payments", headers=auth["sales"],
                       json={"provider": "offline"})
    assert paid.status_code == 200, paid.get_json()
    body = paid.get_json()
    assert body["order_state"] == "paid" and len(body["tickets"]) == 2
    assert all(t["code"] for t in body["tickets"])  # shown this once, to the clerk
    read = client.get(f"/api/v1/orders/{order['number']}", headers=auth["sales"]).get_json()
    assert read["state"] == "paid" and read["tickets"] == [t["number"] for t in body["tickets"]]
    assert "code" not in str(read)
    twice = client.post(f"/api/v1/orders/{order['number']}/payments", headers=auth["sales"],
                        json={"provider": "offline"})
    assert twice.status_code == 409 and twice.get_json()["error"] == "order_not_pending"
    refused = client.post(f"/api/v1/orders/{order['number']}/cancel", headers=auth["sales"])
    assert refused.status_code == 409
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar_one() == 2


def test_the_answer_of_a_hold_is_the_order_as_read_back(shop):
    # the hold's answer is made from what was written (no read after the quotas are taken):
    # it must say exactly what reading the order says, holders masked
    client, _engine, session, zone, auth = shop
    holder = {"name": "张三丰", "doc_type": "resident_id", "doc_number": "11010519491231002X"}
    made = client.post(f"/api/v1/sessions/{session}/orders", headers=auth["sales"], json={
        "lines": [{"zone_id": zone[0], "price_tier_id": zone[1], "holder": holder},
                  {"zone_id": zone[0], "price_tier_id": zone[1]}]})
    assert made.status_code == 201, made.get_json()
    read = client.get(f"/api/v1/orders/{made.get_json()['number']}", headers=auth["sales"])
    assert made.get_json() == read.get_json()
    assert made.get_json()["lines"][0]["holder"]["name"] != holder["name"]  # masked
    assert "11010519491231002X" not in made.get_data(as_text=True)


def test_a_booth_payment_retried_with_its_key_pays_once_in_one_transaction(shop):
    # offline calls no provider: no work apart, the payment made in the key's transaction;
    # the retry replays the first answer (the codes included) and issues nothing more
    client, engine, session, zone, auth = shop
    number = _order(client, session, zone, auth, count=1).get_json()["number"]
    headers = {**auth["sales"], "Idempotency-Key": "pay-1"}
    first = client.post(f"/api/v1/orders/{number}/payments", headers=headers,
                        json={"provider": "offline"})
    assert first.status_code == 200 and first.get_json()["order_state"] == "paid"
    again = client.post(f"/api/v1/orders/{number}/payments", headers=headers,
                        json={"provider": "offline"})
    assert again.get_data() == first.get_data() and again.headers["Idempotent-Replayed"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar_one() == 1
    unknown = client.post(f"/api/v1/orders/{number}/payments", headers=auth["sales"],
                          json={"provider": "cheque"})
    assert unknown.get_json()["error"] == "unknown_provider"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "lines"),
    ({"lines": []}, "lines"),
    ({"lines": [{"seat_id": "7"}]}, "lines.0.seat_id"),
    ({"lines": [{"kind": "box"}]}, "lines.0.kind"),
    ({"lines": [{"zone_id": 1, "colour": "red"}]}, "lines.0.colour"),
    ({"lines": [{"zone_id": 1, "holder": {"name": "Li"}}]}, "lines.0.holder.doc_type"),
    ({"lines": [{"zone_id": 1}], "buyer": 5}, "buyer"),
])
def test_a_bad_order_is_refused_naming_its_field_and_holds_nothing(shop, body, field):
    client, engine, session, _zone, auth = shop
    r = client.post(f"/api/v1/sessions/{session}/orders", headers=auth["sales"], json=body)
    assert r.status_code == 400 and r.get_json()["params"]["field"] == field, r.get_json()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one() == 0


def test_a_sold_out_zone_and_a_cancelled_order(shop):
    client, _engine, session, zone, auth = shop
    first = _order(client, session, zone, auth, count=4).get_json()
    full = _order(client, session, zone, auth, count=1)
    assert full.status_code == 409 and full.get_json()["error"] in ("sold_out",
                                                                     "no_adjacent_seats")
    cancelled = client.post(f"/api/v1/orders/{first['number']}/cancel", headers=auth["sales"])
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"
    assert _order(client, session, zone, auth, count=4).status_code == 201  # seats came back


def _wechat_payment(engine, order: dict, trade: str) -> None:
    with engine.begin() as conn:
        order_id = conn.execute(sa.select(orders.c.id).where(
            orders.c.number == order["number"])).scalar_one()
        conn.execute(sa.insert(payments).values(
            order_id=order_id, provider="wechat", out_trade_no=trade, amount=order["total"],
            state="pending", created_at=utcnow()))


def test_a_signed_notification_pays_the_order_once(shop, provider_side):
    client, engine, session, zone, auth = shop
    order = _order(client, session, zone, auth).get_json()
    _wechat_payment(engine, order, "T7001")
    headers, body = wechat_notice(provider_side, trade="T7001", total=order["total"],
                                  nid="N7001", when=datetime.now(UTC))
    for _ in range(2):  # the provider delivers it twice
        r = client.post("/api/v1/payments/notify/wechat", data=body, headers=headers,
                        content_type="application/json")
        assert r.status_code == 204
    read = client.get(f"/api/v1/orders/{order['number']}", headers=auth["sales"]).get_json()
    assert read["state"] == "paid" and len(read["tickets"]) == 2
    forged = wechat_notice(provider_side, trade="T7001", total=order["total"], nid="N7002",
                           when=datetime.now(UTC))
    r = client.post("/api/v1/payments/notify/wechat", data=forged[1].replace(b"N7002", b"N7003"),
                    headers=forged[0], content_type="application/json")
    assert r.status_code == 400
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar_one() == 2


def test_money_for_an_order_whose_seats_went_meanwhile_is_refunded_by_a_job(shop,
                                                                            provider_side):
    client, engine, session, zone, auth = shop
    late = _order(client, session, zone, auth, count=4).get_json()
    _wechat_payment(engine, late, "T7101")
    with engine.begin() as conn:
        order_id = conn.execute(sa.select(orders.c.id).where(
            orders.c.number == late["number"])).scalar_one()
        assert expire_order(conn, order_id, utcnow() + timedelta(hours=1))
    assert _order(client, session, zone, auth, count=4).status_code == 201  # seats resold
    headers, body = wechat_notice(provider_side, trade="T7101", total=late["total"],
                                  nid="N7101", when=datetime.now(UTC))
    r = client.post("/api/v1/payments/notify/wechat", data=body, headers=headers,
                    content_type="application/json")
    assert r.status_code == 204  # taken: the money is the hub's to give back
    with engine.connect() as conn:
        (job,) = conn.execute(sa.select(jobs)).all()
        state = conn.execute(sa.select(orders.c.state).where(orders.c.id == order_id)).scalar()
    assert job.kind == REFUND_JOB and job.payload["amount"] == late["total"]
    assert job.payload["reason"] == "seats_gone" and state == "expired"
    # the worker's job asks the provider with no transaction open; WeChat does not answer here
    # (its endpoint is a closed port), so the refund stays requested and the job waits; run
    # again, it asks with the same refund number and reserves nothing twice
    tasks = Tasks()
    tasks.register(REFUND_JOB, refund_handler(
        {"wechat": make_providers(payment_settings(provider_side.settings, {}))["wechat"]},
        lambda name: "https://hub.example/api/v1/payments/notify/" + name), apart=True)
    for attempt in (1, 2):
        with engine.begin() as conn:  # due again at once
            conn.execute(sa.update(jobs).values(run_after=utcnow() - timedelta(seconds=1)))
        ran = run_one(engine, tasks, "test-worker")
        assert ran is not None and ran[1] == "waiting", (attempt, ran)
    with engine.connect() as conn:
        refunds = conn.execute(sa.select(payment_refunds)).all()
        paid = conn.execute(sa.select(payments).where(payments.c.out_trade_no == "T7101")).one()
    assert [(r.state, r.out_refund_no, r.amount) for r in refunds] == [
        ("requested", "UT7101", late["total"])]
    assert paid.refunded == late["total"]


def test_an_unplaced_booth_payment_is_refunded_once_by_the_worker(shop):
    client, engine, session, zone, auth = shop
    order = _order(client, session, zone, auth).get_json()
    with engine.begin() as conn:
        order_id = conn.execute(sa.select(orders.c.id).where(
            orders.c.number == order["number"])).scalar_one()
        cancel_order(conn, order_id)
        started = start_payment(conn, OfflineProvider(), order_id, order["total"], "booth",
                                utcnow() + timedelta(minutes=5))
        placed = place(conn, started.outcome)
    assert placed.refund_needed and placed.reason == "cancelled"
    tasks = Tasks()
    tasks.register(REFUND_JOB, refund_handler({"offline": OfflineProvider()}, lambda n: ""),
                   apart=True)
    assert run_one(engine, tasks, "test-worker")[1] == "done"
    handler = tasks.handlers[REFUND_JOB]  # the same job run again refunds nothing more
    with engine.connect() as conn:
        payload = conn.execute(sa.select(jobs.c.payload)).scalar_one()
    handler(engine, payload, utcnow())
    with engine.connect() as conn:
        refunds = conn.execute(sa.select(payment_refunds.c.state)).scalars().all()
        refunded = conn.execute(sa.select(payments.c.refunded)).scalar_one()
    assert refunds == ["succeeded"] and refunded == order["total"]


def test_the_worker_will_not_start_without_an_address_providers_can_notify(provider_side,
                                                                          monkeypatch):
    from cloud.cli import worker_tasks

    for name, value in provider_side.settings.items():
        monkeypatch.setenv(f"WICKET_HUB_{name}", value)
    monkeypatch.delenv("WICKET_HUB_PUBLIC_URL", raising=False)
    monkeypatch.delenv("WICKET_HUB_PAYMENTS_NOTIFY_URL", raising=False)
    with pytest.raises(ValueError, match="WICKET_HUB_PUBLIC_URL"):
        worker_tasks()
    monkeypatch.setenv("WICKET_HUB_PUBLIC_URL", "https://hub.example")
    assert "follow_up_payments" in [p.name for p in worker_tasks().periodic]


class _Watching:
    """A provider that, while it is asked to open a payment, looks at the hub's database from
    a connection of its own: the payment it is asked about must be committed already, and
    another writer must not wait (on SQLite an open write transaction would make it)."""

    name = "wechat"

    def __init__(self, engine):
        self.engine = engine
        self.seen: list[str | None] = []

    def create(self, out_trade_no, amount, description, expires_at, notify_url):
        with self.engine.connect() as other:
            sqlite = other.dialect.name == "sqlite"
            if sqlite:
                before = other.exec_driver_sql("PRAGMA busy_timeout").scalar()
                other.exec_driver_sql("PRAGMA busy_timeout = 0")
                other.commit()
            try:
                with other.begin():
                    self.seen.append(other.execute(sa.select(payments.c.state).where(
                        payments.c.out_trade_no == out_trade_no)).scalar())
                    other.execute(sa.update(payments).where(payments.c.id == -1)
                                  .values(state="created"))
            finally:
                if sqlite:
                    other.exec_driver_sql(f"PRAGMA busy_timeout = {int(before)}")
                    other.commit()
        return Shown(qr_text=f"weixin://wxpay/bizpayurl?pr={out_trade_no[:8]}")


def test_a_provider_is_asked_with_no_transaction_open_and_a_retry_does_not_ask_again(shop):
    client, engine, session, zone, auth = shop
    watching = _Watching(engine)
    client.application.extensions["payment_providers"]["wechat"] = watching
    order = _order(client, session, zone, auth).get_json()
    headers = {**auth["sales"], "Idempotency-Key": "pay-1"}
    first = client.post(f"/api/v1/orders/{order['number']}/payments", headers=headers,
                        json={"provider": "wechat"})
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["state"] == "pending" and first.get_json()["qr_text"]
    assert watching.seen == ["created"]  # committed before the provider was asked
    again = client.post(f"/api/v1/orders/{order['number']}/payments", headers=headers,
                        json={"provider": "wechat"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data() and watching.seen == ["created"]
    reused = client.post(f"/api/v1/orders/{order['number']}/payments", headers=headers,
                         json={"provider": "offline"})
    assert reused.status_code == 422 and reused.get_json()["error"] == "idempotency_key_reused"
    other_key = client.post(f"/api/v1/orders/{order['number']}/payments",
                            headers={**auth["sales"], "Idempotency-Key": "pay-2"},
                            json={"provider": "wechat"})
    assert other_key.get_json()["payment"] == first.get_json()["payment"]  # the same trade
    assert watching.seen == ["created", "pending"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(payments)).scalar_one() == 1
