"""Orders at the hub: holds until a payment deadline, capture issuing tickets, lazy expiry,
late payments, seat categories pricing seats, sale windows, session state, quotas, limits and
one document per real-name session — on both databases, at fixed times."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.errors import CatalogError
from cloud.catalog.events import add_price_tier, set_event_limits
from cloud.catalog.products import add_product
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.audit import audit_log, reset_source, set_source
from cloud.core.errors import HubError
from cloud.inventory.quotas import add_quota, quota_ids, quota_key, set_capacity
from cloud.inventory.seats import confirm_configuration, put_on_sale
from cloud.inventory.sessions import (
    cancel_session,
    create_session,
    edit_session,
    postpone_session,
)
from cloud.inventory.tables import quotas, session_seats
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import (
    cancel_order,
    capture,
    create_order,
    expire_lapsed_orders,
    expire_order,
    open_presale_order,
    open_topup_order,
    payable,
    payable_by_number,
)
from cloud.sales.selling import sell
from cloud.sales.tables import order_lines, orders, tickets
from cloud.sales.tickets import TicketSpec, revoke_ticket
from sync.sample import resident_id
from tests.cloud.orderkit import NOW, START, build

DOC = resident_id("11010119900307123")
OTHER_DOC = resident_id("11010119850101001")


@pytest.fixture
def hub(hub_url, key_store):
    h = build(hub_url)
    yield h
    h.engine.dispose()


def order(h, *lines, now=NOW, **kw):
    with h.engine.begin() as conn:
        return create_order(conn, OrderRequest(h.session, tuple(lines), **kw), now)


def seat_line(h, zone, row, number, **kw):
    return LineRequest(seat_id=h.seat(zone, row, number), **kw)


def status(h, seat_id):
    with h.engine.connect() as conn:
        return conn.execute(sa.select(session_seats.c.status, session_seats.c.order_id).where(
            session_seats.c.session_id == h.session, session_seats.c.seat_id == seat_id)).one()


def used(h, quota_id):
    with h.engine.connect() as conn:
        return conn.execute(sa.select(quotas.c.used).where(quotas.c.id == quota_id)).scalar()


def refused(code, fn, *args, **kw):
    with pytest.raises(HubError) as e:
        fn(*args, **kw)
    assert e.value.code == code, e.value
    return e.value


def test_an_order_holds_its_seats_and_capture_issues_its_tickets_once(hub):
    made = order(hub, seat_line(hub, "A", "1", 1), seat_line(hub, "A", "2", 1), buyer="u1")
    assert made.total == 88000 + 38000 and made.expires_at == NOW + timedelta(minutes=15)
    assert tuple(status(hub, made.seat_ids[0])) == ("held", made.order_id)
    with hub.engine.begin() as conn:
        p = payable(conn, made.order_id, NOW)
        assert (p.amount, p.currency, p.state) == (126000, "CNY", "pending_payment")
        assert "The Games — Final: 2 tickets" in p.description
        assert payable_by_number(conn, made.number, NOW) == p
        e = refused("unknown_order", payable_by_number, conn, "NO-SUCH-ORDER")
        assert e.params["field"] == "number"
        paid = capture(conn, made.order_id, 126000, "wechat", "tx-1", NOW + timedelta(minutes=1))
    assert paid.state == "paid" and len(paid.tickets) == 2 and not paid.refund_needed
    assert status(hub, made.seat_ids[0]).status == "sold"
    with hub.engine.begin() as conn:
        again = capture(conn, made.order_id, 126000, "wechat", "tx-1", NOW)
        assert again.duplicate and again.tickets == paid.tickets
        twice = capture(conn, made.order_id, 126000, "alipay", "tx-9", NOW)
        assert twice.refund_needed and twice.reason == "already_paid"
        rows = conn.execute(sa.select(tickets.c.amount, tickets.c.order_id, tickets.c.state)
                            .order_by(tickets.c.id)).all()
    assert [tuple(r) for r in rows] == [(88000, made.order_id, "issued"),
                                        (38000, made.order_id, "issued")]


@pytest.mark.parametrize("kind", ["sale", "presale", "topup"])
def test_an_order_is_audited_as_it_is_made_with_the_address_it_came_from(hub, kind):
    token = set_source("203.0.113.9")
    try:
        if kind == "sale":
            made = order(hub, seat_line(hub, "A", "1", 1), seat_line(hub, "A", "2", 1),
                         actor="clerk")
            order_id, number = made.order_id, made.number
            details = {"lines": 2, "total": 126000}
        else:
            with hub.engine.begin() as conn:
                order_id, number = (open_presale_order(
                    conn, session_id=hub.session, buyer="u1", actor="clerk", total=500,
                    currency="CNY", until=NOW + timedelta(minutes=15), now=NOW)
                    if kind == "presale" else open_topup_order(
                    conn, partner_id=7, actor="clerk", total=500, currency="CNY", now=NOW))
            details = {"kind": kind, "total": 500}
    finally:
        reset_source(token)
    with hub.engine.connect() as conn:
        row = conn.execute(sa.select(audit_log).where(
            audit_log.c.subject == f"order:{order_id}")).one()
        kept = conn.execute(sa.select(orders.c.kind, orders.c.actor).where(
            orders.c.id == order_id)).one()
    assert (row.actor, row.action, row.before, row.source) == \
        ("clerk", "order.create", None, "203.0.113.9")
    assert row.after == {"number": number, **details,
                         "expires_at": (NOW + timedelta(minutes=15)).isoformat()}
    assert tuple(kept) == (kind, "clerk")


def test_a_wrong_amount_or_a_cancelled_order_is_not_paid(hub):
    made = order(hub, seat_line(hub, "A", "2", 2))
    with hub.engine.begin() as conn:
        wrong = capture(conn, made.order_id, 1, "wechat", "tx-1", NOW)
        assert wrong.refund_needed and wrong.reason == "amount_mismatch"
        cancel_order(conn, made.order_id, actor="clerk", now=NOW)
        gone = capture(conn, made.order_id, made.total, "wechat", "tx-2", NOW)
        assert gone.refund_needed and gone.reason == "cancelled"
        refused("order_not_pending", cancel_order, conn, made.order_id)
    assert tuple(status(hub, made.seat_ids[0])) == ("available", None)


def test_a_lapsed_hold_stops_counting_at_once_and_its_quota_is_given_back(hub):
    with hub.engine.begin() as conn:
        zone_quota = add_quota(conn, "zone", 1, session_id=hub.session, zone_id=hub.zones["B"])
    first = order(hub, seat_line(hub, "B", "1", 1))
    refused("seat_taken", order, hub, seat_line(hub, "B", "1", 1), now=NOW)
    refused("sold_out", order, hub, seat_line(hub, "B", "1", 2), now=NOW)
    later = NOW + timedelta(minutes=15, seconds=1)  # past the deadline: no longer held
    second = order(hub, seat_line(hub, "B", "1", 1), now=later)
    assert used(hub, zone_quota) == 1
    with hub.engine.begin() as conn:
        assert conn.execute(sa.select(orders.c.state).where(
            orders.c.id == first.order_id)).scalar() == "expired"
        late = capture(conn, first.order_id, first.total, "wechat", "late", later)
    assert late.refund_needed and late.reason == "seats_gone"
    assert tuple(status(hub, first.seat_ids[0])) == ("held", second.order_id)


def test_a_quota_held_by_a_lapsed_order_frees_itself_for_the_next_sale(hub):
    with hub.engine.begin() as conn:
        ga_tier = add_price_tier(conn, hub.session, "GA", "Standing", 10000)
        ga = add_quota(conn, "ga", 2, session_id=hub.session)
    ga_line = LineRequest(kind="ga", price_tier_id=ga_tier)
    order(hub, ga_line, ga_line)
    refused("sold_out", order, hub, ga_line, now=NOW + timedelta(minutes=1))
    order(hub, ga_line, now=NOW + timedelta(minutes=16))
    assert used(hub, ga) == 1


def test_a_late_payment_holds_again_what_is_still_free(hub):
    with hub.engine.begin() as conn:
        zone_quota = add_quota(conn, "zone", 5, session_id=hub.session, zone_id=hub.zones["A"])
    made = order(hub, seat_line(hub, "A", "1", 3))
    with hub.engine.begin() as conn:
        assert not expire_order(conn, made.order_id, NOW + timedelta(minutes=1))  # in time
        assert expire_order(conn, made.order_id, NOW + timedelta(minutes=20))
        assert expire_lapsed_orders(conn, NOW + timedelta(minutes=20)) == 0
    assert tuple(status(hub, made.seat_ids[0])) == ("available", None)
    assert used(hub, zone_quota) == 0
    with hub.engine.begin() as conn:
        assert payable(conn, made.order_id).state == "expired"
        paid = capture(conn, made.order_id, made.total, "alipay", "a-1",
                       NOW + timedelta(minutes=21))
    assert paid.state == "paid" and len(paid.tickets) == 1
    assert status(hub, made.seat_ids[0]).status == "sold" and used(hub, zone_quota) == 1


def test_a_late_payment_is_held_to_the_buyers_limit_in_force(hub):
    with hub.engine.begin() as conn:
        edit_session(conn, hub.session, buyer_limit=1)
    lapsed = order(hub, seat_line(hub, "A", "1", 3), buyer="u1")
    later = order(hub, seat_line(hub, "A", "1", 4), buyer="u1", now=NOW + timedelta(minutes=20))
    with hub.engine.begin() as conn:
        late = capture(conn, lapsed.order_id, lapsed.total, "alipay", "a-late",
                       NOW + timedelta(minutes=21))
    assert late.refund_needed and late.reason == "limit_reached"
    with hub.engine.connect() as conn:
        assert payable(conn, lapsed.order_id).state == "expired"
    assert status(hub, lapsed.seat_ids[0]).status != "sold"
    with hub.engine.begin() as conn:  # the limit lifted: the next late payment is taken
        edit_session(conn, hub.session, buyer_limit=2)
        again = capture(conn, lapsed.order_id, lapsed.total, "alipay", "a-late-2",
                        NOW + timedelta(minutes=22))
        assert capture(conn, later.order_id, later.total, "alipay", "a-2",
                       NOW + timedelta(minutes=22)).state == "paid"
    assert again.state == "paid" and status(hub, lapsed.seat_ids[0]).status == "sold"


def test_a_seat_is_priced_by_its_category(hub):
    refused("tier_not_for_seat", order, hub, seat_line(hub, "A", "1", 1, price_tier_id=hub.std))
    made = order(hub, seat_line(hub, "A", "1", 1, price_tier_id=hub.vip),
                 seat_line(hub, "B", "1", 1))
    assert made.total == 88000 + 38000
    with hub.engine.begin() as conn:
        with pytest.raises(CatalogError, match="prices seat category 'vip' already"):
            add_price_tier(conn, hub.session, "VIP2", "VIP again", 1, seat_category="vip")
    with hub.engine.begin() as conn:
        tier = add_price_tier(conn, hub.session, "ALL", "Anything", 100)
    refused("tier_prices_seats", order, hub, LineRequest(kind="ga", price_tier_id=hub.vip))
    refused("no_general_admission", order, hub, LineRequest(kind="ga", price_tier_id=tier))


def test_a_line_is_priced_by_a_tier_of_its_own_session_or_free_where_it_has_none(hub):
    e = refused("tier_required", order, hub, LineRequest(zone_id=hub.zones["A"]))
    assert e.params["field"] == "lines.0.price_tier_id"
    with hub.engine.begin() as conn:
        other = create_session(conn, hub.event, hub.venue, "Semi", START - timedelta(days=1),
                               START - timedelta(hours=21))
        theirs = add_price_tier(conn, other, "VIP", "VIP", 1, seat_category="vip")
    e = refused("tier_not_for_session", order, hub,
                LineRequest(zone_id=hub.zones["A"], price_tier_id=theirs))
    assert e.params["field"] == "lines.0.price_tier_id"
    with hub.engine.begin() as conn:
        free_session = create_session(conn, hub.event, hub.venue, "Open day",
                                      START + timedelta(days=1),
                                      START + timedelta(days=1, hours=3))
        confirm_configuration(conn, free_session)
        put_on_sale(conn, free_session)
        made = create_order(conn, OrderRequest(free_session, (
            LineRequest(zone_id=hub.zones["B"]), LineRequest(zone_id=hub.zones["B"]))), NOW)
    assert (made.total, made.currency, len(made.seat_ids)) == (0, "CNY", 2)


def test_sale_windows_and_the_session_state_decide_what_is_on_sale(hub):
    with hub.engine.begin() as conn:
        edit_session(conn, hub.session, actor="boss", sale_opens_at=NOW,
                     sale_closes_at=NOW + timedelta(days=1), payment_minutes=5)
        refused("bad_sale_window", edit_session, conn, hub.session, sale_closes_at=NOW)
        early = add_price_tier(conn, hub.session, "EARLY", "Early bird", 100,
                               sale_closes_at=NOW + timedelta(hours=1))
        add_quota(conn, "ga", 10, session_id=hub.session)
    refused("not_on_sale", order, hub, seat_line(hub, "A", "2", 1),
            now=NOW - timedelta(seconds=1))
    refused("not_on_sale", order, hub, seat_line(hub, "A", "2", 1), now=NOW + timedelta(days=1))
    made = order(hub, seat_line(hub, "A", "2", 1))
    assert made.expires_at == NOW + timedelta(minutes=5)
    early_line = LineRequest(kind="ga", price_tier_id=early)
    refused("tier_not_on_sale", order, hub, early_line, now=NOW + timedelta(hours=1))
    order(hub, early_line, now=NOW + timedelta(minutes=59))
    with hub.engine.begin() as conn:
        postpone_session(conn, hub.session, START + timedelta(days=7),
                         START + timedelta(days=7, hours=3), actor="boss")
    order(hub, seat_line(hub, "A", "2", 2))  # a postponed session goes on selling
    with hub.engine.begin() as conn:
        cancel_session(conn, hub.session, actor="boss")
        refused("session_cancelled", cancel_session, conn, hub.session)
        actions = conn.execute(sa.select(audit_log.c.action).where(
            audit_log.c.subject == f"session:{hub.session}")).scalars().all()
    assert {"session.edit", "session.postpone", "session.cancel"} <= set(actions)
    refused("session_cancelled", order, hub, seat_line(hub, "A", "2", 3))
    with hub.engine.begin() as conn:
        refused("session_cancelled", put_on_sale, conn, hub.session)


def test_passes_are_products_sold_within_their_capacity(hub):
    with hub.engine.begin() as conn:
        product = add_product(conn, "P2", "Two-day pass", 50000, scope_kind="sessions",
                              scope=[hub.session], daily_limit=1)
    pass_line = LineRequest(kind="pass", product_id=product)
    with hub.engine.begin() as conn:
        refused("product_not_on_sale", create_order, conn,
                OrderRequest(None, (pass_line,)), NOW)
        add_quota(conn, "pass", 1, product_id=product)
        made = create_order(conn, OrderRequest(None, (pass_line,), buyer="u1"), NOW)
        refused("sold_out", create_order, conn, OrderRequest(None, (pass_line,)), NOW)
        paid = capture(conn, made.order_id, 50000, "offline", "cash-1", NOW)
        kind = conn.execute(sa.select(tickets.c.kind, tickets.c.amount).where(
            tickets.c.id == paid.tickets[0].id)).one()
    assert tuple(kind) == ("sessions", 50000)


def test_one_document_per_real_name_session_by_the_unique_index(hub):
    with hub.engine.begin() as conn:
        edit_session(conn, hub.session, real_name=True)
    refused("holder_required", order, hub, seat_line(hub, "A", "2", 1))
    holder = ("张小三", "resident_id", DOC)
    order(hub, seat_line(hub, "A", "2", 1, holder=holder))
    e = refused("document_already_used", order, hub,
                seat_line(hub, "A", "2", 2, holder=("张小三", "resident_id", DOC.lower())))
    assert e.params["field"] == "holder"
    refused("document_already_used", order, hub,
            seat_line(hub, "A", "2", 3, holder=("李四", "resident_id", OTHER_DOC)),
            seat_line(hub, "A", "2", 4, holder=("李四", "resident_id", OTHER_DOC)))
    # once the first order lapses its document is free again
    order(hub, seat_line(hub, "A", "2", 5, holder=holder), now=NOW + timedelta(minutes=30))
    with hub.engine.connect() as conn:
        live = conn.execute(sa.select(sa.func.count()).select_from(order_lines).where(
            order_lines.c.state == "held")).scalar()
    assert live == 1


def test_limits_per_buyer_and_per_holder_per_session_and_per_event(hub):
    with hub.engine.begin() as conn:
        edit_session(conn, hub.session, buyer_limit=3, holder_limit=1)
        set_event_limits(conn, hub.event, buyer_limit=2, holder_limit=None)
    e = refused("limit_reached", order, hub, seat_line(hub, "A", "2", 1),
                seat_line(hub, "A", "2", 2), seat_line(hub, "A", "2", 3), buyer="u1")
    assert e.params["limit"] == 2 and e.params["per"] == "buyer per event"
    order(hub, seat_line(hub, "A", "2", 1), seat_line(hub, "A", "2", 2), buyer="u1")
    refused("limit_reached", order, hub, seat_line(hub, "A", "2", 3), buyer="u1")
    order(hub, seat_line(hub, "A", "2", 3), buyer="u2")
    holder = ("张小三", "resident_id", DOC)
    order(hub, seat_line(hub, "A", "2", 4, holder=holder))
    e = refused("limit_reached", order, hub, seat_line(hub, "A", "2", 5, holder=holder))
    assert e.params["per"] == "holder per session"
    # a cancelled order gives its counts back
    with hub.engine.begin() as conn:
        first = conn.execute(sa.select(orders.c.id).where(orders.c.buyer == "u1")).scalar()
        cancel_order(conn, first, now=NOW)
    order(hub, seat_line(hub, "A", "2", 6), buyer="u1")


def test_every_line_counts_against_its_zone_tier_and_channel_quotas_however_it_is_asked(hub):
    """The quotas a line names outright are read with the session, a chosen seat's once its
    zone and tier are known: both count the same."""
    with hub.engine.begin() as conn:
        zone = add_quota(conn, "zone", 3, session_id=hub.session, zone_id=hub.zones["A"])
        tier = add_quota(conn, "tier", 2, session_id=hub.session, price_tier_id=hub.std)
        channel = add_quota(conn, "channel", 1, session_id=hub.session,
                            price_tier_id=hub.vip, channel_id=9)
    best_std = LineRequest(zone_id=hub.zones["A"], price_tier_id=hub.std)
    order(hub, best_std)
    order(hub, seat_line(hub, "A", "2", 6))  # std by its category
    e = refused("sold_out", order, hub, best_std)
    assert e.params["field"] == "lines"
    refused("sold_out", order, hub, seat_line(hub, "A", "2", 5))
    assert (used(hub, zone), used(hub, tier)) == (2, 2)
    best_vip = LineRequest(zone_id=hub.zones["A"], price_tier_id=hub.vip)
    order(hub, best_vip, quota_scopes=("chan:9",))
    refused("sold_out", order, hub, seat_line(hub, "A", "1", 1), quota_scopes=("chan:9",))
    refused("sold_out", order, hub, best_vip)  # the zone's third and last went above
    assert (used(hub, zone), used(hub, channel)) == (3, 1)


def test_best_available_finds_adjacent_seats_in_one_row(hub):
    with hub.engine.connect() as conn:
        ranks = dict(conn.execute(sa.select(session_seats.c.seat_id, session_seats.c.rank)
                                  .where(session_seats.c.session_id == hub.session)).all())
    middle = {hub.seat("A", "1", 3), hub.seat("A", "1", 4)}
    assert sorted(ranks[s] for s in middle) == [1, 2]
    best = LineRequest(zone_id=hub.zones["A"], price_tier_id=hub.vip)
    made = order(hub, best, best)
    assert set(made.seat_ids) == middle and made.total == 2 * 88000
    # the vip row has 1, 2 and 5, 6 left: no three side by side (row 2 is another category)
    refused("no_adjacent_seats", order, hub, best, best, best)
    std = LineRequest(zone_id=hub.zones["A"], price_tier_id=hub.std)
    three = order(hub, std, std, std)
    assert sorted(int(n) for n in _numbers(hub, three.seat_ids)) == [2, 3, 4]  # middle first
    assert len(set(order(hub, best, best).seat_ids) & middle) == 0
    refused("sold_out", order, hub, *[LineRequest(zone_id=hub.zones["B"],
                                                  price_tier_id=hub.std)] * 5)


def test_best_available_in_a_zone_of_another_venue_is_refused_naming_the_line(hub):
    with hub.engine.begin() as conn:
        elsewhere = add_zone(conn, create_venue(conn, "WKS", "Workers' Stadium"), "A", "Zone A")
    e = refused("unknown_zone", order, hub, LineRequest(zone_id=hub.zones["A"],
                                                        price_tier_id=hub.std),
                LineRequest(zone_id=elsewhere, price_tier_id=hub.std))
    assert e.params["field"] == "lines.1.zone_id" and e.params["zone_id"] == elsewhere


def _numbers(hub, seat_ids):
    from cloud.catalog.tables import seats
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(seats.c.number).where(seats.c.id.in_(seat_ids))).scalars()


def test_quota_ids_are_found_for_many_keys_at_once(hub):
    with hub.engine.begin() as conn:
        made = {quota_key("ga", hub.session, n): add_quota(conn, "ga", 5, session_id=hub.session,
                                                          zone_id=n) for n in range(1, 21)}
        asked = set(made) | {quota_key("ga", hub.session, 99)}  # one key has no quota
        assert quota_ids(conn, asked) == made  # 21 keys: more than one statement's worth
        assert quota_ids(conn, set()) == {}


def test_a_quota_cannot_go_below_what_is_used(hub):
    with hub.engine.begin() as conn:
        q = add_quota(conn, "zone", 2, session_id=hub.session, zone_id=hub.zones["A"])
        refused("quota_exists", add_quota, conn, "zone", 2, session_id=hub.session,
                zone_id=hub.zones["A"])
        refused("bad_quota", add_quota, conn, "ga", -1, session_id=hub.session)
    order(hub, seat_line(hub, "A", "2", 1), seat_line(hub, "A", "2", 2))
    with hub.engine.begin() as conn:
        refused("capacity_below_used", set_capacity, conn, q, 1)
        set_capacity(conn, q, 3)
    with pytest.raises(sa.exc.IntegrityError):  # the database itself refuses more than capacity
        with hub.engine.begin() as conn:
            conn.execute(sa.update(quotas).where(quotas.c.id == q).values(used=4))


def test_the_box_office_sale_is_an_order_paid_at_the_counter(hub):
    seat_id = hub.seat("A", "2", 1)
    with hub.engine.begin() as conn:
        issued = sell(conn, hub.session, [TicketSpec(seat_id=seat_id)], actor="clerk", now=NOW)
        o = conn.execute(sa.select(orders)).one()
    assert (o.state, o.payment_provider, o.total, o.actor) == ("paid", "offline", 38000, "clerk")
    assert status(hub, seat_id).status == "sold" and len(issued) == 1
    with pytest.raises(HubError, match="not for sale"):
        with hub.engine.begin() as conn:
            sell(conn, hub.session, [TicketSpec(seat_id=seat_id)], now=NOW)


def test_a_refunded_ticket_gives_its_line_back_and_the_order_is_refunded_in_parts(hub):
    with hub.engine.begin() as conn:
        edit_session(conn, hub.session, real_name=True, holder_limit=1)
        zone_quota = add_quota(conn, "zone", 2, session_id=hub.session, zone_id=hub.zones["A"])
    holder = ("张小三", "resident_id", DOC)
    made = order(hub, seat_line(hub, "A", "2", 1, holder=holder),
                 seat_line(hub, "A", "2", 2, holder=("李四", "resident_id", OTHER_DOC)))
    with hub.engine.begin() as conn:
        paid = capture(conn, made.order_id, made.total, "wechat", "tx-1", NOW)
        revoke_ticket(conn, paid.tickets[0].id, "refunded", NOW)
        assert conn.execute(sa.select(orders.c.state).where(
            orders.c.id == made.order_id)).scalar() == "partially_refunded"
    assert used(hub, zone_quota) == 1
    order(hub, seat_line(hub, "A", "2", 3, holder=holder))  # the document may buy again
    with hub.engine.begin() as conn:
        revoke_ticket(conn, paid.tickets[1].id, "refunded", NOW)
        assert conn.execute(sa.select(orders.c.state).where(
            orders.c.id == made.order_id)).scalar() == "refunded"


def test_a_seat_is_named_only_by_a_seat_line_and_only_once(hub):
    with hub.engine.begin() as conn:
        ga_tier = add_price_tier(conn, hub.session, "GA", "Standing", 10000)
        add_quota(conn, "ga", 5, session_id=hub.session)
    vip = hub.seat("A", "1", 1)
    e = refused("seat_on_other_line", order, hub, LineRequest(kind="ga", seat_id=vip,
                                                              price_tier_id=ga_tier))
    assert e.params["field"] == "lines.0.seat_id"  # not a VIP seat at the standing price
    e = refused("seat_twice", order, hub, seat_line(hub, "A", "1", 2), LineRequest(seat_id=vip),
                LineRequest(seat_id=vip))
    assert e.params["field"] == "lines.2.seat_id"
    e = refused("holder_name_missing", order, hub, seat_line(hub, "A", "2", 1),
                seat_line(hub, "A", "2", 2, holder=(" ", "resident_id", DOC)))
    assert e.params["field"] == "lines.1.holder.name"
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == 0


def test_a_payment_arriving_as_its_hold_lapses_never_sells_a_seat_another_order_took(hub):
    first = order(hub, seat_line(hub, "B", "1", 1), seat_line(hub, "B", "1", 2))
    deadline = first.expires_at
    # a buyer a moment past the deadline takes the whole zone, best available: the lapsed
    # seats count as free to it, and the first order's row is not tidied on the way ...
    best = LineRequest(zone_id=hub.zones["B"], price_tier_id=hub.std)
    taker = order(hub, best, best, best, best, now=deadline + timedelta(seconds=1))
    # ... while the first order's payment, stamped at its deadline, is captured
    with hub.engine.begin() as conn:
        late = capture(conn, first.order_id, first.total, "wechat", "edge", deadline)
        sold = conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar()
        state = conn.execute(sa.select(orders.c.state).where(
            orders.c.id == first.order_id)).scalar()
    assert late.refund_needed and late.reason == "seats_gone"
    assert sold == 0 and state == "expired"
    for seat in first.seat_ids:
        assert tuple(status(hub, seat)) == ("held", taker.order_id)
    with hub.engine.begin() as conn:  # the taker pays for what it holds
        paid = capture(conn, taker.order_id, taker.total, "wechat", "taker", deadline)
    assert paid.state == "paid" and len(paid.tickets) == 4


def test_a_voided_ticket_gives_its_line_back_as_its_seat_goes_back_on_sale(hub):
    with hub.engine.begin() as conn:
        zone_quota = add_quota(conn, "zone", 1, session_id=hub.session, zone_id=hub.zones["B"])
    made = order(hub, seat_line(hub, "B", "1", 3))
    with hub.engine.begin() as conn:
        paid = capture(conn, made.order_id, made.total, "wechat", "tx-void", NOW)
        revoke_ticket(conn, paid.tickets[0].id, "void", NOW)
        state = conn.execute(sa.select(orders.c.state).where(
            orders.c.id == made.order_id)).scalar()
    assert used(hub, zone_quota) == 0 and state == "paid"  # no money moved
    order(hub, seat_line(hub, "B", "1", 3))  # the seat sells again within its quota
