"""The presale lottery over JSON, on both databases: the staff API sets a presale up, freezes
it, has the seed entered by two people, draws or imports, refunds and assigns; the buyer's API
applies with the buyer's own verified people, pays through a provider (the payment sandbox),
reads only the buyer's own applications and chooses a winner's seats. Every refusal is a 4xx
naming its field, a token without the permission gets 403, and a retried write with its
Idempotency-Key gets the first answer."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.app import create_app
from cloud.buyers import companions as comp
from cloud.buyers import sessions as buyer_sessions
from cloud.buyers.own_identity import verify_buyer
from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.tables import seats
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.db import init_db
from cloud.core.jobs import jobs
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session, edit_session
from cloud.lottery import draw as pure_draw
from cloud.lottery.refunding import REFUND_JOB
from cloud.lottery.tables import presale_applications, presales
from cloud.sales.orders import capture
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from sync.sample import resident_id
from sync.timeutil import utcnow
from tests.cloud.buyers.buyerkit import mark_verified, new_buyer
from tests.cloud.payments.conftest import sandbox  # noqa: F401 (the sandbox fixture)

PASSWORD = "Harbour-lamp-2026"
# zone A row 1: 6 vip seats; row 2: 6 std seats
SEATS = ("level,zone,row,number,category\n"
         + "".join(f"L1,A,1,{n},vip\n" for n in range(1, 7))
         + "".join(f"L1,A,2,{n},std\n" for n in range(1, 7)))


@dataclass
class Hub:
    client: object
    engine: sa.Engine
    event: int
    session: int
    vip: int
    std: int
    staff: dict[str, dict[str, str]]

    def call(self, method: str, path: str, who: dict[str, str] | None = None,
             key: str | None = None, **kw):
        headers = dict(who or {})
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client.open(path, method=method, headers=headers, **kw)

    def buyer(self, n: int, companions: int = 0) -> tuple[dict[str, str], list[str]]:
        """A signed-in buyer (n-th) verified, with verified companions: their Authorization
        header and holder keys ("me", "c<id>"…)."""
        buyer_id = new_buyer(self.engine, f"1380013{n:04d}")
        with self.engine.begin() as conn:
            me, _ = verify_buyer(conn, buyer_id, name="张三", doc_type="resident_id",
                                 number=resident_id(f"11010119900101{n:03d}"))
            added = [comp.add_companion(conn, buyer_id, name="李四", doc_type="resident_id",
                                        doc_number=resident_id(f"31010119850101{n * 5 + i:03d}"))
                     for i in range(companions)]
            token = buyer_sessions.start_session(conn, buyer_id)
        mark_verified(self.engine, me, *(c.identity_id for c in added))
        return {"Authorization": f"Bearer {token}"}, ["me"] + [f"c{c.id}" for c in added]


@pytest.fixture
def hub(hub_url, sandbox):  # noqa: F811
    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True, "SECRET_KEY": "test",
                      "RATELIMIT_ENABLED": False, "HUB_PUBLIC_URL": "http://127.0.0.1:9",
                      **sandbox.settings})
    engine = app.extensions["db"]
    start = utcnow() + timedelta(days=30)
    staff = {}
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "North Stand")
        assert import_seats_csv(conn, venue, SEATS).ok
        event = create_event(conn, "GAMES", "The Games")
        session = create_session(conn, event, venue, "Final", start, start + timedelta(hours=3))
        vip = add_price_tier(conn, session, "VIP", "VIP", 88000, seat_category="vip")
        std = add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
        edit_session(conn, session, real_name=True)
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
        for name, role in (("manager", "ticketing"), ("witness", "admin"), ("clerk", "sales")):
            staff_id = create_staff(conn, name, PASSWORD, role, actor="test")
            staff[name] = {"Authorization":
                           f"Bearer {create_token(conn, staff_id, 't', 'test')[1]}"}
    yield Hub(app.test_client(), engine, event, session, vip, std, staff)
    engine.dispose()


def _key() -> str:
    return f"k-{uuid.uuid4()}"


def _open_presale(hub: Hub, tickets: tuple[int, int] = (2, 3)) -> tuple[int, list[int]]:
    now = utcnow()
    r = hub.call("POST", "/api/v1/presales", hub.staff["manager"], _key(), json={
        "event_id": hub.event, "name": "Final presale", "max_quantity": 4,
        "opens_at": (now - timedelta(minutes=5)).isoformat(),
        "closes_at": (now + timedelta(hours=1)).isoformat()})
    assert r.status_code == 201, r.get_json()
    pid = r.get_json()["id"]
    lots = []
    for tier, n in zip((hub.vip, hub.std), tickets, strict=True):
        r = hub.call("POST", f"/api/v1/presales/{pid}/lots", hub.staff["manager"], _key(),
                     json={"session_id": hub.session, "price_tier_id": tier, "tickets": n})
        assert r.status_code == 201, r.get_json()
        lots.append(r.get_json()["lot_id"])
    r = hub.call("POST", f"/api/v1/presales/{pid}/open", hub.staff["manager"], _key())
    assert r.status_code == 200 and r.get_json()["presale"]["state"] == "open", r.get_json()
    return pid, lots


def _refused(r, status: int, field: str, code: str | None = None) -> None:
    body = r.get_json()
    assert r.status_code == status, body
    assert body["params"].get("field") == field, body
    if code is not None:
        assert body["error"] == code, body


def test_staff_set_a_presale_up_and_every_bad_field_is_named(hub):
    manager = hub.staff["manager"]
    now = utcnow()
    good = {"event_id": hub.event, "name": "Presale", "opens_at": now.isoformat(),
            "closes_at": (now + timedelta(hours=1)).isoformat()}
    for change, field in (({"name": None}, "name"), ({"opens_at": "2027-01-01T09:00"},
                          "opens_at"), ({"closes_at": "soon"}, "closes_at"),
                          ({"max_quantity": 11}, "max_quantity"),
                          ({"channels": ["shop"]}, "channels.0"), ({"colour": 1}, "colour")):
        body = {k: v for k, v in {**good, **change}.items() if v is not None}
        _refused(hub.call("POST", "/api/v1/presales", manager, _key(), json=body), 400, field,
                 "bad_request")
    _refused(hub.call("POST", "/api/v1/presales", manager, _key(), json={
        **good, "closes_at": good["opens_at"]}), 422, "closes_at", "bad_presale")
    _refused(hub.call("POST", "/api/v1/presales", manager, _key(), json={
        **good, "event_id": 999}), 422, "event_id", "bad_presale")
    r = hub.call("POST", "/api/v1/presales", hub.staff["clerk"], _key(), json=good)
    assert r.status_code == 403 and r.get_json()["error"] == "forbidden"
    assert hub.call("POST", "/api/v1/presales", json=good).status_code == 401

    key = _key()
    first = hub.call("POST", "/api/v1/presales", manager, key, json=good)
    again = hub.call("POST", "/api/v1/presales", manager, key, json=good)
    assert first.status_code == again.status_code == 201
    assert again.data == first.data and again.headers["Idempotent-Replayed"] == "true"
    pid = first.get_json()["id"]
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(presales)).scalar() == 1

    lots = f"/api/v1/presales/{pid}/lots"
    lot = {"session_id": hub.session, "price_tier_id": hub.vip, "tickets": 6}
    _refused(hub.call("POST", lots, manager, _key(), json={**lot, "tickets": 7}), 422,
             "tickets", "lot_over_seats")
    _refused(hub.call("POST", lots, manager, _key(), json={**lot, "tickets": "6"}), 400,
             "tickets", "bad_request")
    _refused(hub.call("POST", lots, manager, _key(), json={**lot, "price_tier_id": 999}), 422,
             "price_tier_id", "lot_not_in_event")
    _refused(hub.call("POST", "/api/v1/presales/999/lots", manager, _key(), json=lot), 404,
             "presale_id", "unknown_presale")
    _refused(hub.call("POST", f"/api/v1/presales/{pid}/open", manager, _key()), 422, "lots",
             "bad_presale")
    assert hub.call("POST", lots, manager, _key(), json=lot).status_code == 201
    _refused(hub.call("POST", f"/api/v1/presales/{pid}/open", manager, _key(),
                      json={"now": 1}), 400, "now", "bad_request")
    assert hub.call("POST", f"/api/v1/presales/{pid}/open", manager, _key()).status_code == 200
    _refused(hub.call("POST", lots, manager, _key(), json=lot), 409, "presale_id",
             "presale_state")
    shown = hub.call("GET", f"/api/v1/presales/{pid}", manager).get_json()
    assert shown["state"] == "open" and [x["tickets"] for x in shown["lots"]] == [6]
    assert shown["lot_counts"][0]["applications"] == 0
    assert hub.call("GET", f"/api/v1/presales/{pid}", hub.staff["clerk"]).status_code == 403
    _refused(hub.call("GET", f"/api/v1/presales/{pid}/list", manager), 409, "presale_id",
             "presale_state")


def test_a_buyer_applies_with_their_own_people_and_pays_through_the_provider(hub):
    pid, (vip, std) = _open_presale(hub)
    zhang, people = hub.buyer(1, companions=1)
    wang, others = hub.buyer(2, companions=1)
    r = hub.call("GET", f"/api/v1/buyer/presales/{pid}")
    assert r.status_code == 200 and [x["id"] for x in r.get_json()["lots"]] == [vip, std]
    assert r.get_json()["list_sha256"] is None
    _refused(hub.call("GET", "/api/v1/buyer/presales/999"), 404, "presale_id")

    url = f"/api/v1/buyer/presales/{pid}/applications"
    ask = {"lot_id": vip, "quantity": 2, "holders": people}
    assert hub.call("POST", url, json=ask).status_code == 401
    for change, status, field in (({"holders": ["me", "x1"]}, 400, "holders.1"),
                                  ({"holders": ["me", "me"]}, 400, "holders"),
                                  ({"quantity": 0}, 400, "quantity"),
                                  ({"lot_id": "1"}, 400, "lot_id"),
                                  ({"quantity": 1}, 422, "holders"),
                                  ({"lot_id": 999}, 404, "lot_id"),
                                  ({"holders": ["me", others[1]]}, 404, "holders.1")):
        _refused(hub.call("POST", url, zhang, _key(), json={**ask, **change}), status, field)
    key = _key()
    first = hub.call("POST", url, zhang, key, json=ask)
    again = hub.call("POST", url, zhang, key, json=ask)
    assert first.status_code == again.status_code == 201, first.get_json()
    assert again.data == first.data
    number = first.get_json()["number"]
    assert first.get_json()["amount"] == 2 * 88000
    # one document per session across applications, whoever applies
    _refused(hub.call("POST", url, zhang, _key(), json={**ask, "lot_id": std}), 409, "holders",
             "holder_already_applied")

    mine = hub.call("GET", "/api/v1/buyer/applications", zhang).get_json()["applications"]
    assert [(a["number"], a["state"]) for a in mine] == [(number, "pending_payment")]
    assert hub.call("GET", "/api/v1/buyer/applications", wang).get_json()["applications"] == []
    _refused(hub.call("GET", f"/api/v1/buyer/applications/{number}", wang), 404, "number",
             "unknown_application")
    pay = f"/api/v1/buyer/applications/{number}/payments"
    _refused(hub.call("POST", pay, wang, _key(), json={"provider": "wechat"}), 404, "number")
    _refused(hub.call("POST", pay, zhang, _key(), json={"provider": "offline"}), 400,
             "provider", "bad_request")
    _refused(hub.call("POST", pay, zhang, _key(), json={}), 400, "provider", "bad_request")
    r = hub.call("POST", pay, zhang, _key(), json={"provider": "wechat"})
    assert r.status_code == 201 and r.get_json()["qr_text"], r.get_json()
    assert r.get_json()["state"] == "pending"
    shown = hub.call("GET", f"/api/v1/buyer/applications/{number}", zhang).get_json()
    assert shown["quantity"] == 2 and shown["seats"] == []


def _apply_paid(hub: Hub, pid: int, lot: int, who: tuple, quantity: int) -> str:
    header, people = who
    r = hub.call("POST", f"/api/v1/buyer/presales/{pid}/applications", header, _key(),
                 json={"lot_id": lot, "quantity": quantity, "holders": people[:quantity]})
    assert r.status_code == 201, r.get_json()
    number = r.get_json()["number"]
    with hub.engine.begin() as conn:  # paid (the provider's notification: payments' tests)
        app = conn.execute(sa.select(presale_applications).where(
            presale_applications.c.number == number)).one()
        capture(conn, app.order_id, app.amount, "wechat", f"tx-{number}", utcnow())
    return number


def _frozen(hub: Hub) -> tuple[int, list[int], dict[str, tuple], dict[str, str]]:
    """An open presale with five paid applications (vip: 2 tickets, std: 3), its deadline
    passed, frozen over the API: (id, lots, buyers, application number per buyer)."""
    pid, lots = _open_presale(hub)
    buyers = {n: hub.buyer(i, companions=1) for i, n in enumerate("abcde", 10)}
    numbers = {n: _apply_paid(hub, pid, lots[i % 2], buyers[n], 1 + i % 2)
               for i, n in enumerate("abcde")}
    now = utcnow()
    with hub.engine.begin() as conn:  # the deadline passes
        conn.execute(sa.update(presales).where(presales.c.id == pid).values(
            opens_at=now - timedelta(hours=1), closes_at=now - timedelta(seconds=1)))
    manager = hub.staff["manager"]
    assert hub.call("POST", f"/api/v1/presales/{pid}/freeze", hub.staff["clerk"],
                    _key()).status_code == 403
    key = _key()
    r = hub.call("POST", f"/api/v1/presales/{pid}/freeze", manager, key)
    assert r.status_code == 200, r.get_json()
    assert hub.call("POST", f"/api/v1/presales/{pid}/freeze", manager, key).data == r.data
    listed = hub.call("GET", f"/api/v1/presales/{pid}/list", manager)
    assert hashlib.sha256(listed.data).hexdigest() == r.get_json()["list_sha256"]
    public = hub.call("GET", f"/api/v1/buyer/presales/{pid}").get_json()
    assert public["list_sha256"] == r.get_json()["list_sha256"] and public["seed"] is None
    return pid, lots, buyers, numbers


def test_two_people_fix_the_seed_the_draw_refunds_the_losers_and_seats_the_winners(hub):
    pid, lots, buyers, numbers = _frozen(hub)
    manager, witness = hub.staff["manager"], hub.staff["witness"]
    seed = f"/api/v1/presales/{pid}/seed"
    assert hub.call("POST", seed, hub.staff["clerk"], _key(),
                    json={"seed": "42"}).status_code == 403
    _refused(hub.call("POST", seed, manager, _key(), json={"seed": 42}), 400, "seed")
    closes = (utcnow() + timedelta(hours=1)).isoformat()
    _refused(hub.call("POST", f"/api/v1/presales/{pid}/draw", manager, _key(),
                      json={"choose_closes_at": closes}), 409, "seed", "presale_state")
    assert hub.call("POST", seed, manager, _key(), json={"seed": "0042 7781"}
                    ).get_json() == {"seed": "first"}
    _refused(hub.call("POST", seed, manager, _key(), json={"seed": "0042 7781"}), 409, "seed",
             "seed_same_person")
    assert hub.call("POST", seed, witness, _key(), json={"seed": " 0042  7781 "}
                    ).get_json() == {"seed": "fixed"}
    _refused(hub.call("POST", seed, witness, _key(), json={"seed": "1"}), 409, "seed",
             "seed_fixed")

    draw = f"/api/v1/presales/{pid}/draw"
    _refused(hub.call("POST", draw, manager, _key(), json={"choose_closes_at": "tomorrow"}),
             400, "choose_closes_at", "bad_request")
    _refused(hub.call("POST", draw, manager, _key(), json={
        "choose_closes_at": (utcnow() - timedelta(hours=1)).isoformat()}), 422,
        "choose_closes_at", "bad_presale")
    r = hub.call("POST", draw, manager, _key(), json={"choose_closes_at": closes})
    assert r.status_code == 200, r.get_json()
    result = hub.call("GET", f"/api/v1/presales/{pid}/result", manager)
    assert hashlib.sha256(result.data).hexdigest() == r.get_json()["result_sha256"]
    listed = hub.call("GET", f"/api/v1/presales/{pid}/list", manager).data
    assert result.data == pure_draw.result_file(pure_draw.draw(
        pure_draw.parse_list(listed), hashlib.sha256(listed).hexdigest(), "0042 7781"))
    public = hub.call("GET", f"/api/v1/buyer/presales/{pid}").get_json()
    assert public["seed"] == "0042 7781"
    won = {w for ws in public["winners"].values() for w in ws}
    assert won and won < set(numbers.values())

    states = {n: hub.call("GET", f"/api/v1/buyer/applications/{numbers[n]}", buyers[n][0]
                          ).get_json()["state"] for n in numbers}
    assert {numbers[n] for n, s in states.items() if s == "won"} == won
    loser = next(n for n, s in states.items() if s == "lost")
    r = hub.call("POST", f"/api/v1/presales/{pid}/refunds", manager, _key())
    assert r.status_code == 202 and r.get_json()["progress"]["waiting"] == len(numbers) - len(won)
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(jobs.c.payload).where(jobs.c.kind == REFUND_JOB)
                            ).scalar_one() == {"presale_id": pid}
    progress = hub.call("GET", f"/api/v1/presales/{pid}/refunds", manager).get_json()
    assert progress["total"] == len(numbers) - len(won) and progress["refunded"] == 0

    winner = next(n for n, s in states.items() if s == "won")
    header, number = buyers[winner][0], numbers[winner]
    quantity = hub.call("GET", f"/api/v1/buyer/applications/{number}", header
                        ).get_json()["quantity"]
    category = "vip" if quantity == 1 else "std"
    with hub.engine.connect() as conn:
        free = conn.execute(sa.select(seats.c.id).where(seats.c.category == category)
                            .order_by(seats.c.id.desc())).scalars().all()
        wrong = conn.execute(sa.select(seats.c.id).where(seats.c.category != category)
                             ).scalars().first()
    choose = f"/api/v1/buyer/applications/{number}/seats"
    _refused(hub.call("PUT", choose, header, _key(), json={"seat_ids": [wrong] * quantity}),
             422, "seats", "bad_seats")
    _refused(hub.call("PUT", choose, header, _key(), json={"seat_ids": ["1"]}), 400,
             "seat_ids.0", "bad_request")
    _refused(hub.call("PUT", choose, buyers[loser][0], _key(),
                      json={"seat_ids": free[:quantity]}), 404, "number")
    _refused(hub.call("PUT", f"/api/v1/buyer/applications/{numbers[loser]}/seats",
                      buyers[loser][0], _key(), json={"seat_ids": free[:1]}), 409, "number",
             "not_a_winner")
    key = _key()
    r = hub.call("PUT", choose, header, key, json={"seat_ids": free[:quantity]})
    assert r.status_code == 200 and len(r.get_json()["seats"]) == quantity, r.get_json()
    assert hub.call("PUT", choose, header, key, json={"seat_ids": free[:quantity]}
                    ).data == r.data

    assert hub.call("POST", f"/api/v1/presales/{pid}/assign", hub.staff["clerk"],
                    _key()).status_code == 403
    r = hub.call("POST", f"/api/v1/presales/{pid}/assign", manager, _key())
    assert r.status_code == 200 and r.get_json()["seated"] == len(won) - 1, r.get_json()
    assert r.get_json()["presale"]["state"] == "assigned"
    for n in numbers:
        shown = hub.call("GET", f"/api/v1/buyer/applications/{numbers[n]}", buyers[n][0]
                         ).get_json()
        assert (shown["state"] == "seated") == (numbers[n] in won), shown
        assert len(shown["seats"]) == (shown["quantity"] if numbers[n] in won else 0)


def test_an_imported_result_is_checked_against_the_frozen_list(hub):
    pid, lots, buyers, numbers = _frozen(hub)
    manager = hub.staff["manager"]
    closes = (utcnow() + timedelta(hours=1)).isoformat()
    url = f"/api/v1/presales/{pid}/result?choose_closes_at={closes.replace('+', '%2B')}"
    listed = hub.call("GET", f"/api/v1/presales/{pid}/list", manager).data
    result = pure_draw.result_file(pure_draw.draw(
        pure_draw.parse_list(listed), hashlib.sha256(listed).hexdigest(), "notary 7"))
    assert hub.call("POST", url, hub.staff["clerk"], _key(), data=result,
                    content_type="text/plain").status_code == 403
    _refused(hub.call("POST", url, manager, _key(), data=b"", content_type="text/plain"), 400,
             "result", "bad_request")
    _refused(hub.call("POST", f"/api/v1/presales/{pid}/result", manager, _key(), data=result,
                      content_type="text/plain"), 400, "choose_closes_at", "bad_request")
    forged = result.replace(b"win ", b"win 9", 1)
    _refused(hub.call("POST", url, manager, _key(), data=forged, content_type="text/plain"),
             422, "result", "bad_result")
    r = hub.call("POST", url, manager, _key(), data=result, content_type="text/plain")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["presale"]["result_source"] == "import"
    assert hub.call("GET", f"/api/v1/presales/{pid}/result", manager).data == result
