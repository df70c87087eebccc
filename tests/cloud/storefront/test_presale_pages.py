"""The presale lottery on the public site: the presale's public page (lots and rules, then the
frozen list's hash matching the file published, the seed, the result and the winners with how
to check them), applying with verified people and paying the application's order, the
refusals said in words, and after a draw (driven through the core as staff would) a winner
choosing seats of their tier on the map while the loser is told so — another buyer finding
none of it. On both databases."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.tables import seats
from cloud.lottery import drawing, freezing
from cloud.lottery.presales import add_lot, create_presale, open_presale
from cloud.lottery.refunding import refund_losers
from cloud.lottery.tables import presale_applications, presales
from cloud.payments.capturing import place
from cloud.payments.checkout import start_payment
from cloud.sales.tables import orders, tickets
from sync.timeutil import utcnow
from tests.cloud.storefront.shopkit import build_shop
from tests.cloud.storefront.test_checkout import _buyer_id, _companion, _signed_in, _verified_self

STAFF = ("staff:1", "staff:2")
SEED = "notary 2027-03-01 No. 0417"


@pytest.fixture
def shop(hub_url, key_store):
    s = build_shop(hub_url, AVAILABILITY_MAX_AGE=0)  # every page read afresh
    yield s
    s.engine.dispose()


def _presale(shop, opens_in=timedelta(hours=-1), vip=2, std=1, name="Final presale") -> int:
    now = utcnow()
    with shop.engine.begin() as conn:
        pid = create_presale(conn, event_id=shop.event, name=name, opens_at=now + opens_in,
                             closes_at=now + opens_in + timedelta(hours=3), actor=STAFF[0],
                             max_quantity=2)
        add_lot(conn, pid, shop.final, shop.vip, vip, STAFF[0])
        add_lot(conn, pid, shop.final, shop.std, std, STAFF[0])
        open_presale(conn, pid, STAFF[0])
    return pid


def _lots(shop, pid: int) -> dict[str, int]:
    from cloud.lottery.presales import lots

    with shop.engine.connect() as conn:
        return {("vip" if x.price_tier_id == shop.vip else "std"): x.id for x in lots(conn, pid)}


def _buyer(shop, mobile: str, companion: bool = False):
    c, token = _signed_in(shop.app, shop.engine, mobile)
    buyer = _buyer_id(shop.engine, mobile)
    _verified_self(shop.engine, buyer)
    return c, token, _companion(shop.engine, buyer) if companion else None


def _apply(c, token, pid: int, lot: int, *holders: str, quantity: int | None = None):
    data = {"lot": lot, "quantity": quantity or len(holders), "csrf_token": token}
    data.update({f"holder_{i}": h for i, h in enumerate(holders)})
    return c.post(f"/shop/en/presales/{pid}/apply", data=data)


def _pay(shop, number: str) -> None:
    """The application's order paid through the offline provider, captured as a provider's
    notification would capture it."""
    with shop.engine.begin() as conn:
        o = conn.execute(sa.select(orders).join(
            presale_applications, presale_applications.c.order_id == orders.c.id)
            .where(presale_applications.c.number == number)).one()
        paid = start_payment(conn, shop.app.extensions["payment_providers"]["offline"], o.id,
                             o.total, "presale", o.expires_at)
        assert place(conn, paid.outcome).state == "paid"


def _seat_ids(shop, zone: str, row: str, *numbers: int) -> list[int]:
    with shop.engine.connect() as conn:
        return [conn.execute(sa.select(seats.c.id).where(
            seats.c.zone_id == shop.zones[zone], seats.c.row == row,
            seats.c.number == str(n))).scalar_one() for n in numbers]


def _draw(shop, pid: int) -> None:
    """Frozen after the deadline, the seed entered by two people, drawn."""
    with shop.engine.begin() as conn:
        closes = conn.execute(sa.select(presales.c.closes_at).where(presales.c.id == pid)
                              ).scalar_one()
        freezing.freeze(conn, pid, STAFF[0], now=closes + timedelta(minutes=1))
    with shop.engine.begin() as conn:
        assert freezing.enter_seed(conn, pid, STAFF[0], SEED) == "first"
    with shop.engine.begin() as conn:
        assert freezing.enter_seed(conn, pid, STAFF[1], SEED) == "fixed"
    with shop.engine.begin() as conn:
        drawing.run_draw(conn, pid, STAFF[0], choose_closes_at=utcnow() + timedelta(days=2))


def _number(r) -> str:
    assert r.status_code == 303, r.get_data(as_text=True)
    return r.headers["Location"].rsplit("/", 1)[1]


def test_a_presale_from_its_page_to_a_winner_s_seats_and_a_loser_s_refund(shop):
    pid = _presale(shop)
    lots = _lots(shop, pid)
    anyone = shop.app.test_client()
    event = anyone.get(f"/shop/en/events/{shop.event}").get_data(as_text=True)
    assert f'href="/shop/en/presales/{pid}">Final presale</a> · Taking applications' in event
    page = anyone.get(f"/shop/en/presales/{pid}")
    assert page.status_code == 200 and page.headers["Cache-Control"].startswith("public")
    shown = page.get_data(as_text=True)
    assert "Taking applications" in shown and "880.00 CNY" in shown and "380.00 CNY" in shown
    assert "list of every application in the draw is published here" in shown
    assert anyone.get(f"/shop/en/presales/{pid}/applications.txt").status_code == 404

    winner, w_token, friend = _buyer(shop, "13700137001", companion=True)
    assert "Ticket 2" in winner.get(f"/shop/en/presales/{pid}/apply").get_data(as_text=True)
    won = _number(_apply(winner, w_token, pid, lots["vip"], "me", friend))
    page = winner.get(f"/shop/en/applications/{won}").get_data(as_text=True)
    assert "Waiting for payment" in page and "Pay by" in page
    order_number = re.search(r'id="pay" href="/shop/en/orders/(\w+)"', page).group(1)
    order = winner.get(f"/shop/en/orders/{order_number}").get_data(as_text=True)
    assert "This order pays a presale application" in order and "held until" not in order
    _pay(shop, won)
    assert "Paid: in the draw" in winner.get(f"/shop/en/applications/{won}").get_data(
        as_text=True)
    order = winner.get(f"/shop/en/orders/{order_number}").get_data(as_text=True)
    assert ">Paid</strong>" in order and "Ask for a refund" not in order
    # two buyers for the one standard ticket: one of them loses
    others = {}
    for mobile in ("13700137002", "13700137003"):
        c, token, _ = _buyer(shop, mobile)
        others[_number(_apply(c, token, pid, lots["std"], "me"))] = c
        _pay(shop, list(others)[-1])

    _draw(shop, pid)
    page = anyone.get(f"/shop/en/presales/{pid}").get_data(as_text=True)
    listed = anyone.get(f"/shop/en/presales/{pid}/applications.txt").data
    result = anyone.get(f"/shop/en/presales/{pid}/results.txt").data
    assert re.search(r'id="list-sha256">([0-9a-f]{64})<', page).group(1) == \
        hashlib.sha256(listed).hexdigest()
    assert re.search(r'id="result-sha256">([0-9a-f]{64})<', page).group(1) == \
        hashlib.sha256(result).hexdigest()
    assert won.encode() in listed and won in page and SEED in page
    assert "tools/verify_draw.py applications.txt" in page and "staff:" not in page
    with shop.engine.connect() as conn:
        states = dict(conn.execute(sa.select(presale_applications.c.number,
                                             presale_applications.c.state)).all())
    assert states[won] == "won" and sorted(states[n] for n in others) == ["lost", "won"]
    loser = next(n for n in others if states[n] == "lost")
    assert "Not drawn: the money goes back to you" in others[loser].get(
        f"/shop/en/applications/{loser}").get_data(as_text=True)
    report = refund_losers(shop.engine, pid, shop.app.extensions["payment_providers"],
                           lambda provider: "")
    assert report.asked == 1 and not report.failures
    page = others[loser].get(f"/shop/en/applications/{loser}").get_data(as_text=True)
    assert "Not drawn: refunded" in page and "The whole amount was refunded" in page

    page = winner.get(f"/shop/en/applications/{won}").get_data(as_text=True)
    assert "Drawn: choose your seats" in page and f"/applications/{won}/seats" in page
    vip = _seat_ids(shop, "A", "1", 3, 4)
    std = _seat_ids(shop, "A", "2", 3)[0]
    seat_map = winner.get(f"/shop/en/applications/{won}/seats").get_data(as_text=True)
    assert f'data-seat="{vip[0]}" data-status="free" class="pickable"' in seat_map
    assert f'data-seat="{std}" data-status="taken"' in seat_map  # another tier's
    for picked in ([vip[0]], [vip[0], std], ["x", vip[1]]):
        r = winner.post(f"/shop/en/applications/{won}/seats",
                        data={"seat": picked, "csrf_token": w_token})
        assert r.status_code == 422, picked
        assert "choose 2 free seats of your price tier" in r.get_data(as_text=True)
    r = winner.post(f"/shop/en/applications/{won}/seats", data={"seat": vip,
                                                                 "csrf_token": w_token})
    assert r.status_code == 303
    page = winner.get(r.headers["Location"]).get_data(as_text=True)
    with shop.engine.connect() as conn:
        issued = conn.execute(sa.select(tickets.c.number).join(
            orders, orders.c.id == tickets.c.order_id).where(orders.c.number == order_number)
        ).scalars().all()
    assert "Drawn: seats given, tickets issued" in page and len(issued) == 2
    assert all(n in page for n in issued)
    # seats chosen once: the map is closed to them now
    again = winner.post(f"/shop/en/applications/{won}/seats",
                        data={"seat": _seat_ids(shop, "A", "1", 5, 6), "csrf_token": w_token})
    assert again.status_code == 409 and "only a winner without seats" in again.get_data(
        as_text=True)
    # another buyer finds none of it
    stranger = others[loser]
    for path in (f"/shop/en/applications/{won}", f"/shop/en/applications/{won}/seats"):
        assert stranger.get(path).status_code == 404
    assert won not in stranger.get("/shop/en/applications").get_data(as_text=True)
    zh = anyone.get(f"/shop/zh/presales/{pid}").get_data(as_text=True)
    assert "抽签" in zh and "Taking applications" not in zh


def test_what_an_application_may_not_do_is_refused_in_words_and_nothing_is_applied(shop):
    pid = _presale(shop)
    later = _presale(shop, opens_in=timedelta(days=1), name="Later presale")
    vip = _lots(shop, pid)["vip"]
    c, token, friend = _buyer(shop, "13700137004", companion=True)
    pending = _companion(shop.engine, _buyer_id(shop.engine, "13700137004"), verified=False)
    for (presale_id, lot, holders, quantity), (status, words) in [
            ((pid, vip, ("me", pending), 2), (409, "not verified yet")),
            ((pid, vip, ("me", "me"), 2), (422, "ticket 2 names someone")),
            ((pid, vip, ("me", friend, "me"), 3), (422, "an application is for 1 to 2")),
            ((pid, vip, ("me", ""), 2), (422, "ticket 2 names nobody")),
            ((pid, 999999, ("me",), 1), (404, "no lot 999999")),
            ((later, _lots(shop, later)["vip"], ("me",), 1),
             (409, "the presale takes applications from"))]:
        r = _apply(c, token, presale_id, lot, *holders, quantity=quantity)
        shown = r.get_data(as_text=True)
        assert (r.status_code, words in shown) == (status, True), (holders, shown[-600:])
        assert 'role="alert"' in shown
    with shop.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(presale_applications)
                            ).scalar_one() == 0
    assert "Applications open soon" in c.get(f"/shop/en/presales/{later}/apply").get_data(
        as_text=True)
    # one person applies once per session, across applications
    first = _number(_apply(c, token, pid, vip, "me", quantity=1))
    again = _apply(c, token, pid, vip, "me", quantity=1)
    assert again.status_code == 409 and "already has an application" in again.get_data(
        as_text=True)
    assert first in c.get("/shop/en/applications").get_data(as_text=True)
    # a draft is not found, as an id that never existed
    with shop.engine.begin() as conn:
        draft = create_presale(conn, event_id=shop.event, name="Draft", opens_at=utcnow(),
                               closes_at=utcnow() + timedelta(hours=1), actor=STAFF[0])
    for path in (f"/shop/en/presales/{draft}", "/shop/en/presales/999999"):
        assert shop.app.test_client().get(path).status_code == 404
