"""The presale's rules on both databases: who may apply for what (one document per session
across applications, the buyer's limit, the window, the quantity), an unpaid application
giving its place back, the freeze (unpaid voided, unverified refused, the list's hash), the
seed entered by two people, the draw and an imported result, seats chosen or assigned with
tickets on the paid order, and the losers refunded; when the session is cancelled, the paid
applications without tickets refunded once, the unpaid cancelled and the seated left to the
session's bulk refund."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.buyers.tables import identities
from cloud.core.errors import HubError
from cloud.core.jobs import jobs
from cloud.core.outbox import outbox
from cloud.inventory.sessions import cancel_session
from cloud.lottery import applying, cancelling, choosing, draw, drawing, freezing, refunding
from cloud.lottery.tables import presale_applications, presales
from cloud.payments import refund_approval
from cloud.payments.capturing import place
from cloud.payments.checkout import start_payment
from cloud.payments.offline import OfflineProvider
from cloud.payments.tables import payment_refunds, payments
from cloud.sales.orders import shown_state
from cloud.sales.tables import order_lines, orders, tickets
from sync.timeutil import utcnow
from tests.cloud.lottery import lotterykit as kit
from tests.cloud.storefront.shopkit import build_shop


@pytest.fixture
def shop(hub_url, key_store):
    s = build_shop(hub_url)
    yield s
    s.engine.dispose()


def refused(code: str, fn, *args, **kw) -> HubError:
    with pytest.raises(HubError) as e:
        fn(*args, **kw)
    assert e.value.code == code, e.value
    return e.value


def _states(engine, presale_id: int) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(presale_applications.c.number,
                                           presale_applications.c.state).where(
            presale_applications.c.presale_id == presale_id)).all())


def test_one_document_per_session_the_buyer_limit_and_the_window_hold(shop):
    p = kit.make_presale(shop, buyer_limit=3, max_quantity=2)
    a, b = kit.new_buyer(shop.engine, 1), kit.new_buyer(shop.engine, 2)
    friend = kit.companion(shop.engine, a)
    first = kit.apply(shop.engine, p, p.vip, a, ["me", friend])
    assert first.amount == 2 * 88000 and first.number.startswith("P")
    # the same person for the other tier of the same session: refused by the index
    refused("holder_already_applied", kit.apply, shop.engine, p, p.std, a, ["me"])
    # the buyer's limit (3 tickets) counts across applications
    other = kit.companion(shop.engine, a)
    more = kit.companion(shop.engine, a)
    refused("buyer_limit_reached", kit.apply, shop.engine, p, p.std, a, [other, more])
    kit.apply(shop.engine, p, p.std, a, [other])
    with shop.engine.begin() as conn:
        refused("bad_quantity", applying.apply, conn, p.id, p.std, 3, f"buyer:{b}",
                kit.holders(conn, b, ["me"]) * 3, now=p.during)
        refused("holders_mismatch", applying.apply, conn, p.id, p.std, 2, f"buyer:{b}",
                kit.holders(conn, b, ["me"]), now=p.during)
        refused("presale_not_open", applying.apply, conn, p.id, p.std, 1, f"buyer:{b}",
                kit.holders(conn, b, ["me"]), now=p.after)
        refused("channel_not_offered", applying.apply, conn, p.id, p.std, 1, f"buyer:{b}",
                kit.holders(conn, b, ["me"]), channel="booth", now=p.during)
        refused("unknown_lot", applying.apply, conn, p.id, 999999, 1, f"buyer:{b}",
                kit.holders(conn, b, ["me"]), now=p.during)


def test_an_unpaid_application_gives_its_place_back_and_a_late_payment_is_refused(shop):
    p = kit.make_presale(shop)
    a = kit.new_buyer(shop.engine, 3)
    lapsed = kit.apply(shop.engine, p, p.vip, a, ["me"])
    later = lapsed.expires_at + timedelta(minutes=1)
    again = kit.apply(shop.engine, p, p.std, a, ["me"], now=later)
    assert _states(shop.engine, p.id) == {lapsed.number: "void", again.number: "applied"}
    with shop.engine.begin() as conn:
        started = start_payment(conn, OfflineProvider(), lapsed.order_id, lapsed.amount,
                                "presale", lapsed.expires_at, later)
        captured = place(conn, started.outcome, later)
    assert captured.refund_needed and captured.reason == "application_lapsed"
    assert kit.pay(shop.engine, again) == "paid"


def test_the_freeze_voids_the_unpaid_refuses_the_unverified_and_keeps_the_list(shop):
    p = kit.make_presale(shop)
    buyers = [kit.new_buyer(shop.engine, 10 + i) for i in range(4)]
    friend = kit.companion(shop.engine, buyers[0])
    apps = [kit.apply(shop.engine, p, p.vip, buyers[0], ["me", friend])] + [
        kit.apply(shop.engine, p, p.std, b, ["me"]) for b in buyers[1:]]
    for made in apps[:3]:
        assert kit.pay(shop.engine, made) == "paid"
    with shop.engine.begin() as conn:  # the companion's verification is withdrawn
        from cloud.buyers.tables import companions

        identity = conn.execute(sa.select(companions.c.identity_id).where(
            companions.c.id == int(friend[1:]))).scalar_one()
        conn.execute(sa.update(identities).where(identities.c.id == identity)
                     .values(state="refused"))
    with shop.engine.begin() as conn:
        refused("presale_still_open", freezing.freeze, conn, p.id, kit.STAFF, now=p.during)
    with shop.engine.begin() as conn:
        digest = freezing.freeze(conn, p.id, kit.STAFF, now=p.after)
    assert _states(shop.engine, p.id) == {apps[0].number: "refused", apps[1].number: "applied",
                                          apps[2].number: "applied", apps[3].number: "void"}
    with shop.engine.connect() as conn:
        row = conn.execute(sa.select(presales).where(presales.c.id == p.id)).one()
        unpaid = conn.execute(sa.select(orders).where(orders.c.id == apps[3].order_id)).one()
    assert row.state == "frozen" and shown_state(unpaid, p.after) == "expired"
    assert digest == row.list_sha256 == hashlib.sha256(row.list_file).hexdigest()
    frozen = draw.parse_list(row.list_file)
    assert sorted(e.number for e in frozen.entries) == sorted(a.number for a in apps[1:3])
    with shop.engine.begin() as conn:
        refused("presale_state", applying.apply, conn, p.id, p.std, 1, f"buyer:{buyers[3]}",
                kit.holders(conn, buyers[3], ["me"]), now=p.during)


def test_the_seed_takes_two_people_who_agree(shop):
    p = kit.make_presale(shop)
    kit.pay(shop.engine, kit.apply(shop.engine, p, p.vip, kit.new_buyer(shop.engine, 20),
                                   ["me"]))
    with shop.engine.begin() as conn:
        freezing.freeze(conn, p.id, kit.STAFF, now=p.after)
    window = p.after + timedelta(days=1)
    with shop.engine.begin() as conn:
        assert freezing.enter_seed(conn, p.id, kit.STAFF, "123456") == "first"
        refused("seed_same_person", freezing.enter_seed, conn, p.id, kit.STAFF, "123456")
        refused("presale_state", drawing.run_draw, conn, p.id, kit.STAFF, window, now=p.after)
    with shop.engine.begin() as conn:
        assert freezing.enter_seed(conn, p.id, kit.CHECKER, "654321") == "mismatch"
    with shop.engine.begin() as conn:  # both start again, in any order
        assert freezing.enter_seed(conn, p.id, kit.CHECKER, " 654321 ") == "first"
        assert freezing.enter_seed(conn, p.id, kit.STAFF, "654321") == "fixed"
        refused("seed_fixed", freezing.enter_seed, conn, p.id, "staff:3", "654321")
        seed = conn.execute(sa.select(presales.c.seed, presales.c.seed_by).where(
            presales.c.id == p.id)).one()
    assert seed == ("654321", f"{kit.CHECKER}, {kit.STAFF}")


def test_the_draw_is_the_pure_function_of_the_kept_list_and_tells_every_buyer(shop):
    p = kit.make_presale(shop, vip_tickets=3)
    apps = []
    for i in range(7):
        buyer = kit.new_buyer(shop.engine, 30 + i)
        keys = ["me", kit.companion(shop.engine, buyer)] if i % 3 == 0 else ["me"]
        apps.append(kit.apply(shop.engine, p, p.vip, buyer, keys))
        kit.pay(shop.engine, apps[-1])
    kit.freeze_and_seed(shop.engine, p)
    digest = kit.draw(shop.engine, p)
    with shop.engine.connect() as conn:
        row = conn.execute(sa.select(presales).where(presales.c.id == p.id)).one()
        told = conn.execute(sa.select(sa.func.count()).select_from(outbox).where(
            outbox.c.kind == drawing.RESULT_KIND)).scalar_one()
    expected = draw.draw(draw.parse_list(row.list_file), row.list_sha256, kit.SEED)
    assert row.result_file == draw.result_file(expected)
    assert digest == row.result_sha256 == hashlib.sha256(row.result_file).hexdigest()
    states = _states(shop.engine, p.id)
    won = {w.number for w in expected.wins}
    assert {n for n, s in states.items() if s == "won"} == won
    assert {n for n, s in states.items() if s == "lost"} == {a.number for a in apps} - won
    assert sum(w.quantity for w in expected.wins) <= 3 and told == len(apps)
    with shop.engine.begin() as conn:
        refused("presale_state", drawing.run_draw, conn, p.id, kit.STAFF,
                p.after + timedelta(days=1), now=p.after)


def test_an_imported_result_is_checked_against_the_frozen_list(shop):
    p = kit.make_presale(shop, vip_tickets=2)
    apps = []
    for i in range(3):
        apps.append(kit.apply(shop.engine, p, p.vip, kit.new_buyer(shop.engine, 40 + i),
                              ["me"]))
        kit.pay(shop.engine, apps[-1])
    with shop.engine.begin() as conn:
        freezing.freeze(conn, p.id, kit.STAFF, now=p.after)
    window = p.after + timedelta(days=1)
    too_many = "".join(f"win {p.vip} {a.number} 1\n" for a in apps).encode()
    unknown = f"win {p.vip} PNOSUCHAPP1 1\n".encode()
    for bad in (too_many, unknown):
        with shop.engine.begin() as conn:
            refused("bad_result", drawing.import_result, conn, p.id, kit.STAFF, bad, window,
                    now=p.after)
    good = f"win {p.vip} {apps[2].number} 1\nwin {p.vip} {apps[0].number} 1\n".encode()
    with shop.engine.begin() as conn:
        digest = drawing.import_result(conn, p.id, kit.STAFF, good, window, now=p.after)
    assert digest == hashlib.sha256(good).hexdigest()
    assert _states(shop.engine, p.id) == {apps[0].number: "won", apps[1].number: "lost",
                                          apps[2].number: "won"}


def _seat_ids(shop, zone: str, row: str, *numbers: int) -> list[int]:
    from cloud.catalog.tables import seats

    with shop.engine.connect() as conn:
        return [conn.execute(sa.select(seats.c.id).where(
            seats.c.zone_id == shop.zones[zone], seats.c.row == row,
            seats.c.number == str(n))).scalar_one() for n in numbers]


def test_winners_choose_seats_or_are_given_them_and_their_tickets_are_issued(shop):
    p = kit.make_presale(shop, vip_tickets=6, std_tickets=9)
    apps, buyers = [], []
    for i, (lot, n) in enumerate([(p.vip, 2), (p.vip, 3), (p.std, 2), (p.std, 3),
                                  (p.std, 1)]):
        buyers.append(kit.new_buyer(shop.engine, 50 + i))
        keys = ["me"] + [kit.companion(shop.engine, buyers[-1]) for _ in range(n - 1)]
        apps.append(kit.apply(shop.engine, p, lot, buyers[-1], keys))
        kit.pay(shop.engine, apps[-1])
    kit.freeze_and_seed(shop.engine, p)
    kit.draw(shop.engine, p)  # every application wins: the tickets cover them all
    assert set(_states(shop.engine, p.id).values()) == {"won"}
    chooser = f"buyer:{buyers[0]}"
    one, two_std = _seat_ids(shop, "A", "1", 1), _seat_ids(shop, "A", "2", 2, 3)
    mine = _seat_ids(shop, "A", "1", 5, 6)
    with shop.engine.begin() as conn:
        refused("bad_seats", choosing.choose_seats, conn, chooser, apps[0].number, one,
                now=p.after)
        refused("bad_seats", choosing.choose_seats, conn, chooser, apps[0].number, two_std,
                now=p.after)  # standard seats
        refused("unknown_application", choosing.choose_seats, conn, f"buyer:{buyers[1]}",
                apps[0].number, mine, now=p.after)
    with shop.engine.begin() as conn:
        choosing.choose_seats(conn, chooser, apps[0].number, mine, now=p.after)
    with shop.engine.begin() as conn:
        refused("choice_still_open", choosing.assign_rest, conn, p.id, kit.STAFF, now=p.after)
    with shop.engine.begin() as conn:
        done = choosing.assign_rest(conn, p.id, kit.STAFF, now=p.after, close_now=True)
    assert done.seated == 4 and set(_states(shop.engine, p.id).values()) == {"seated"}
    with shop.engine.connect() as conn:
        lines = conn.execute(sa.select(order_lines.c.order_id, order_lines.c.seat_id,
                                       order_lines.c.ticket_id, order_lines.c.state).where(
            order_lines.c.order_id.in_([a.order_id for a in apps]))).all()
        issued = conn.execute(sa.select(sa.func.count()).select_from(tickets).where(
            tickets.c.order_id.in_([a.order_id for a in apps]),
            tickets.c.state == "issued")).scalar_one()
    seats = [r.seat_id for r in lines]
    assert len(seats) == len(set(seats)) == 11 == issued
    assert {r.state for r in lines} == {"issued"} and all(r.ticket_id for r in lines)
    assert sorted(r.seat_id for r in lines if r.order_id == apps[0].order_id) == sorted(mine)
    # the assigned three VIP seats are side by side in row 1 (seats 1 to 4 were left)
    runs = [_seat_ids(shop, "A", "1", n, n + 1, n + 2) for n in (1, 2)]
    assert sorted(r.seat_id for r in lines if r.order_id == apps[1].order_id) in [
        sorted(run) for run in runs]


def test_those_not_drawn_are_refunded_and_settled(shop):
    p = kit.make_presale(shop, vip_tickets=1)
    apps = []
    for i in range(4):
        apps.append(kit.apply(shop.engine, p, p.vip, kit.new_buyer(shop.engine, 60 + i),
                              ["me"]))
        kit.pay(shop.engine, apps[-1])
    kit.freeze_and_seed(shop.engine, p)
    kit.draw(shop.engine, p)
    report = refunding.refund_losers(shop.engine, p.id, {"offline": OfflineProvider()},
                                     lambda name: "", now=p.after, batch=2)
    assert report.asked == 3 and report.batches == 2 and not report.failures
    with shop.engine.connect() as conn:
        assert refunding.progress(conn, p.id) == {"waiting": 0, "asked": 0, "refunded": 3,
                                                  "total": 3}
        states = dict(conn.execute(sa.select(presale_applications.c.state, orders.c.state)
                                   .join(orders, orders.c.id == presale_applications.c.order_id)
                                   .where(presale_applications.c.presale_id == p.id)).all())
    assert states == {"refunded": "refunded", "won": "paid"}
    again = refunding.refund_losers(shop.engine, p.id, {"offline": OfflineProvider()},
                                    lambda name: "", now=p.after)
    assert again.asked == 0


def test_assignment_short_of_seats_is_refused_in_words_and_seats_nobody(shop):
    p = kit.make_presale(shop, vip_tickets=2)
    made = kit.apply(shop.engine, p, p.vip, kit.new_buyer(shop.engine, 80), ["me"])
    kit.pay(shop.engine, made)
    kit.freeze_and_seed(shop.engine, p)
    kit.draw(shop.engine, p)
    from cloud.inventory.tables import session_seats

    vip = _seat_ids(shop, "A", "1", 1, 2, 3, 4, 5, 6)
    with shop.engine.begin() as conn:  # the tier's seats sold elsewhere after the keep ended
        conn.execute(sa.update(session_seats).where(
            session_seats.c.session_id == shop.final, session_seats.c.seat_id.in_(vip))
            .values(status="sold", reserved_for=None, reserved_until=None))
    with shop.engine.begin() as conn:
        e = refused("not_enough_seats", choosing.assign_rest, conn, p.id, kit.STAFF,
                    now=p.after, close_now=True)
    assert e.params["wanted"] == 1 and e.params["free"] == 0
    assert _states(shop.engine, p.id) == {made.number: "won"}


def test_refunds_that_cannot_be_opened_are_reported_once_and_hold_up_no_other(shop):
    p = kit.make_presale(shop, vip_tickets=1)
    apps = []
    for i in range(5):
        apps.append(kit.apply(shop.engine, p, p.vip, kit.new_buyer(shop.engine, 90 + i),
                              ["me"]))
        kit.pay(shop.engine, apps[-1])
    kit.freeze_and_seed(shop.engine, p)
    kit.draw(shop.engine, p)
    states = _states(shop.engine, p.id)
    lost = sorted(a.number for a in apps if states[a.number] == "lost")
    broken = lost[:2]  # their payments cannot be found: the first ids, batch after batch
    with shop.engine.begin() as conn:
        conn.execute(sa.update(orders).where(orders.c.id.in_(
            sa.select(presale_applications.c.order_id).where(
                presale_applications.c.number.in_(broken))))
            .values(payment_reference=sa.func.upper(orders.c.number)))
    report = refunding.refund_losers(shop.engine, p.id, {"offline": OfflineProvider()},
                                     lambda name: "", now=p.after, batch=1)
    assert sorted(n for n, _ in report.failures) == broken
    assert report.asked == len(lost) - 2
    states = _states(shop.engine, p.id)
    assert [states[n] for n in lost] == ["lost", "lost"] + ["refunded"] * (len(lost) - 2)


def test_seats_are_priced_as_the_application_paid_whatever_the_tier_costs_since(shop):
    from cloud.catalog.tables import price_tiers

    p = kit.make_presale(shop, vip_tickets=2)
    made = kit.apply(shop.engine, p, p.vip, kit.new_buyer(shop.engine, 99), ["me"])
    kit.pay(shop.engine, made)
    kit.freeze_and_seed(shop.engine, p)
    kit.draw(shop.engine, p)
    with shop.engine.begin() as conn:
        conn.execute(sa.update(price_tiers).where(price_tiers.c.id == shop.vip)
                     .values(amount=99000))
    with shop.engine.begin() as conn:
        choosing.assign_rest(conn, p.id, kit.STAFF, now=p.after, close_now=True)
    with shop.engine.connect() as conn:
        paid = conn.execute(sa.select(order_lines.c.amount).where(
            order_lines.c.order_id == made.order_id)).scalars().all()
        ticket = conn.execute(sa.select(tickets.c.amount).where(
            tickets.c.order_id == made.order_id)).scalars().all()
    assert paid == ticket == [88000] == [made.amount]


def test_a_cancelled_session_refunds_its_paid_applications_once_and_cancels_the_unpaid(shop):
    open_ = kit.make_presale(shop)  # still taking applications: two paid, one waiting
    waiting = [kit.apply(shop.engine, open_, open_.std, kit.new_buyer(shop.engine, 110 + i),
                         ["me"]) for i in range(2)]
    for made in waiting:
        kit.pay(shop.engine, made)
    unpaid = kit.apply(shop.engine, open_, open_.std, kit.new_buyer(shop.engine, 112), ["me"],
                       now=utcnow())
    with shop.engine.begin() as conn:  # its buyer starts paying, the money comes late
        late = start_payment(conn, OfflineProvider(), unpaid.order_id, unpaid.amount,
                             "presale", unpaid.expires_at, utcnow())
    drawn = kit.make_presale(shop, vip_tickets=2)  # drawn: one seated, one won, one lost
    buyers = [kit.new_buyer(shop.engine, 113 + i) for i in range(3)]
    apps = [kit.apply(shop.engine, drawn, drawn.vip, b, ["me"]) for b in buyers]
    for made in apps:
        kit.pay(shop.engine, made)
    kit.freeze_and_seed(shop.engine, drawn)
    kit.draw(shop.engine, drawn)
    states = _states(shop.engine, drawn.id)
    (seated, sb), (won, wb) = [(a, f"buyer:{b}") for a, b in zip(apps, buyers, strict=True)
                               if states[a.number] == "won"]
    lost = next(a for a in apps if states[a.number] == "lost")
    five, six = _seat_ids(shop, "A", "1", 5, 6)
    with shop.engine.begin() as conn:
        choosing.choose_seats(conn, sb, seated.number, [six], now=drawn.after)
        cancel_session(conn, shop.final, kit.STAFF)
    # nothing more is taken for it, nor seated in it
    refused("lot_session_cancelled", kit.apply, shop.engine, open_, open_.vip, buyers[0],
            ["me"], now=utcnow())
    with shop.engine.begin() as conn:
        refused("lot_session_cancelled", choosing.choose_seats, conn, wb, won.number, [five],
                now=drawn.after)
    # the session's bulk refund takes the seated application's order (it holds tickets)
    assert refund_approval.refund_session(shop.engine, shop.final).orders == 1
    assert cancelling.give_up_cancelled(shop.engine, batch=2) == {"refused": 3, "voided": 1}
    assert cancelling.give_up_cancelled(shop.engine) == {"refused": 0, "voided": 0}
    with shop.engine.connect() as conn:
        payloads = [j for j in conn.execute(sa.select(jobs.c.payload).where(
            jobs.c.kind == refunding.REFUND_JOB)).scalars()]
        assert cancelling.cancelled_progress(conn, open_.id)["waiting"] == 2
    assert {(j["presale_id"], j["cancelled"]) for j in payloads} == {(open_.id, True),
                                                                    (drawn.id, True)}
    handler = refunding.refund_handler({"offline": OfflineProvider()}, lambda name: "")
    for payload in payloads * 2:  # a job run again asks nothing more
        handler(shop.engine, payload, utcnow())
    with shop.engine.connect() as conn:
        got = {r.number: (r.state, r.order) for r in conn.execute(sa.select(
            presale_applications.c.number, presale_applications.c.state,
            orders.c.state.label("order"))
            .join(orders, orders.c.id == presale_applications.c.order_id))}
        refunds = conn.execute(sa.select(payments.c.order_id, sa.func.count(),
                                         sa.func.sum(payment_refunds.c.amount))
                               .join(payments, payments.c.id == payment_refunds.c.payment_id)
                               .group_by(payments.c.order_id)).all()
        shown = cancelling.cancelled_progress(conn, drawn.id)
    assert got == {
        **{a.number: ("refunded", "refunded") for a in [*waiting, won, lost]},
        unpaid.number: ("void", "cancelled"), seated.number: ("seated", "refunded")}
    paid = {a.order_id: a.amount for a in [*waiting, *apps]}
    assert {r.order_id: (r[1], r[2]) for r in refunds} == {o: (1, n) for o, n in paid.items()}
    assert shown == {"waiting": 0, "asked": 0, "refunded": 2, "total": 2, "seated": 1,
                     "voided": 0, "sessions": "100% Final"}
    with shop.engine.begin() as conn:  # the late payment is refunded, not taken
        assert place(conn, late.outcome, utcnow()).reason == "cancelled"
        assert choosing.assign_rest(conn, drawn.id, kit.STAFF, now=drawn.after,
                                    close_now=True).seated == 0
