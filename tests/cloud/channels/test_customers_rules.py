"""Contract customers (both databases): a customer with its channel and sealed contact; the
two quota tracks (the customer's own and all customers' total) under a race; seats kept for
the customer entity; the offline payment confirmed by staff, which pays and locks the order
and posts the money once; representatives' sign-in scoped to their own customer."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.channels import customer_orders as co
from cloud.channels import customers
from cloud.channels.tables import channels, contract_customers
from cloud.core.errors import HubError
from cloud.inventory.tables import quotas, session_seats
from cloud.ledger.tables import ledger_entries
from cloud.sales.tables import orders, tickets
from sync.timeutil import utcnow
from tests.cloud.channels.customerkit import NOW, PASSWORD, add_customer, add_rep, customer_hub


@pytest.fixture
def kit(hub_url):
    hub, made = customer_hub(hub_url)
    yield hub, made
    hub.engine.dispose()


def std(hub, n: int = 1) -> co.Booking:
    return co.Booking(hub.session, "seat", zone_id=hub.zones["A"], price_tier_id=hub.std,
                      count=n)


def refusal(engine, step) -> str:
    try:
        with engine.begin() as conn:
            step(conn)
    except HubError as e:
        return e.code
    return "ok"


def test_a_customer_has_its_contract_channel_and_a_sealed_contact(kit):
    hub, made = kit
    cid = made["ACME"][0]
    with hub.engine.connect() as conn:
        ch = conn.execute(sa.select(channels).where(channels.c.customer_id == cid)).one()
        row = customers.customer(conn, cid)
        assert (ch.kind, ch.code, ch.enabled) == ("contract", "CUST-ACME", True)
        assert "Wang" not in row.sealed_contact and "13800138000" not in row.sealed_contact
        assert customers.contact_of(conn, row) == ("Wang Fang", "13800138000")
    assert refusal(hub.engine, lambda c: add_customer(c, "ACME")) == "customer_code_taken"
    bad = refusal(hub.engine, lambda c: customers.create_customer(
        c, "GAMMA", "Gamma", ("Li", "call me"), "t", NOW))
    assert bad == "bad_customer_request"
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(contract_customers)
                            ).scalar() == 2


def test_a_booking_must_fit_the_customers_own_quota_and_the_total_of_all(kit):
    hub, made = kit
    (acme, acme_rep), (beta, beta_rep) = made["ACME"], made["BETA"]
    with hub.engine.begin() as conn:
        customers.set_customer_quota(conn, acme, hub.session, hub.std, 2, "t", NOW)
        customers.set_customer_quota(conn, beta, hub.session, hub.std, 2, "t", NOW)
        customers.set_total_quota(conn, hub.session, hub.std, 3, "t", NOW)
        co.book(conn, acme_rep, std(hub, 2), NOW)
    with pytest.raises(HubError) as own, hub.engine.begin() as conn:
        co.book(conn, acme_rep, std(hub), NOW)
    assert own.value.code == "sold_out" and "chan:" in str(own.value)
    with hub.engine.begin() as conn:
        co.book(conn, beta_rep, std(hub), NOW)
    with pytest.raises(HubError) as total, hub.engine.begin() as conn:
        co.book(conn, beta_rep, std(hub), NOW)  # BETA has room, all customers have not
    assert total.value.code == "sold_out" and "contract:" in str(total.value)
    with hub.engine.connect() as conn:
        rows = customers.customer_quotas(conn, beta)
        assert [(r.used, r.capacity, r.total_used, r.total_capacity) for r in rows] == \
            [(1, 2, 3, 3)]


def test_racing_representatives_of_three_customers_never_pass_either_track(hub_url):
    """3 customers × 3 representatives, each trying twice for one seat at once: each
    customer may take 3, all of them together 5 (less than the sum of their own)."""
    hub, made = customer_hub(hub_url, ("ACME", "BETA", "GAMMA"))
    with hub.engine.begin() as conn:
        reps = []
        for code, (cid, first) in made.items():
            customers.set_customer_quota(conn, cid, hub.session, hub.std, 3, "t", NOW)
            reps += [first] + [add_rep(conn, cid, f"{code.lower()}-rep{n}") for n in (2, 3)]
        customers.set_total_quota(conn, hub.session, hub.std, 5, "t", NOW)
    attempts = [r for r in reps for _ in range(2)]
    results: list[tuple[int, str]] = []
    barrier = threading.Barrier(len(attempts))

    def one(rep) -> None:
        barrier.wait()
        try:
            with hub.engine.begin() as conn:
                co.book(conn, rep, std(hub), NOW)
            results.append((rep.customer_id, "ok"))
        except HubError as e:
            results.append((rep.customer_id, e.code))
        except Exception as e:  # noqa: BLE001 - an outcome, so the comparison shows it
            results.append((rep.customer_id, f"unexpected:{type(e).__name__}: {e}"))

    threads = [threading.Thread(target=one, args=(r,)) for r in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = Counter(code for _, code in results)
    assert outcomes == Counter({"ok": 5, "sold_out": len(attempts) - 5}), outcomes
    per_customer = Counter(cid for cid, code in results if code == "ok")
    assert max(per_customer.values()) <= 3
    with hub.engine.connect() as conn:
        used = dict(conn.execute(sa.select(quotas.c.kind, sa.func.sum(quotas.c.used))
                                 .where(quotas.c.kind.in_(("channel", "contract")))
                                 .group_by(quotas.c.kind)).all())
        held = conn.execute(sa.select(sa.func.count()).select_from(session_seats).where(
            session_seats.c.status == "held")).scalar()
    assert used == {"channel": 5, "contract": 5} and held == 5
    for cid, _rep in made.values():
        with hub.engine.connect() as conn:
            assert [r.used for r in customers.customer_quotas(conn, cid)] == \
                [per_customer[cid]]
    hub.engine.dispose()


def test_seats_kept_for_a_customer_are_taken_by_its_representatives_only(kit):
    hub, made = kit
    (acme, acme_rep), (_beta, beta_rep) = made["ACME"], made["BETA"]
    seat = hub.seat("A", "2", 1)
    with hub.engine.begin() as conn:
        co.reserve_seats(conn, acme, hub.session, [seat], utcnow() + timedelta(days=30), "t")
        kept = conn.execute(sa.select(session_seats.c.reserved_for).where(
            session_seats.c.seat_id == seat)).scalar()
    assert kept == "customer:ACME"
    chosen = co.Booking(hub.session, "seat", seat_ids=(seat,))
    assert refusal(hub.engine, lambda c: co.book(c, beta_rep, chosen, NOW)) == \
        "seat_not_for_sale"
    with hub.engine.begin() as conn:  # a chosen seat counts against its category's tier
        customers.set_customer_quota(conn, acme, hub.session, hub.std, 5, "t", NOW)
    assert refusal(hub.engine, lambda c: co.book(c, acme_rep, chosen, NOW)) == "ok"
    with hub.engine.connect() as conn:
        assert [q.used for q in customers.customer_quotas(conn, acme)] == [1]


def test_a_confirmed_offline_payment_pays_and_locks_the_order_and_posts_once(kit):
    hub, made = kit
    (acme, acme_rep), (beta, _) = made["ACME"], made["BETA"]
    with hub.engine.begin() as conn:
        created = co.book(conn, acme_rep, std(hub, 2), NOW)
    assert created.expires_at == NOW + timedelta(days=3)  # time for a bank transfer
    assert refusal(hub.engine, lambda c: co.confirm_payment(
        c, beta, created.number, "BANK-1", "staff:1", NOW)) == "unknown_customer_order"
    assert refusal(hub.engine, lambda c: co.confirm_payment(
        c, acme, created.number, "", "staff:1", NOW)) == "bad_customer_request"
    with hub.engine.begin() as conn:
        captured = co.confirm_payment(conn, acme, created.number, "BANK-1", "staff:1", NOW)
    assert captured.state == "paid" and len(captured.tickets) == 2
    with hub.engine.begin() as conn:  # confirmed again: nothing more
        again = co.confirm_payment(conn, acme, created.number, "BANK-1", "staff:1", NOW)
    assert again.duplicate
    with hub.engine.connect() as conn:
        o = conn.execute(sa.select(orders).where(orders.c.id == created.order_id)).one()
        entries = conn.execute(sa.select(ledger_entries).where(
            ledger_entries.c.order_id == created.order_id)).all()
        n_tickets = conn.execute(sa.select(sa.func.count()).select_from(tickets).where(
            tickets.c.order_id == created.order_id)).scalar()
    assert (o.state, o.payment_provider, n_tickets) == ("paid", "transfer", 2)
    assert [(e.kind, e.amount, e.provider) for e in entries] == \
        [("payment", created.total, "transfer")]
    assert "BANK-1" in entries[0].memo
    assert refusal(hub.engine, lambda c: co.cancel(c, acme_rep, created.number, NOW)) == \
        "customer_order_locked"


def test_a_cancelled_order_cannot_be_paid_and_nothing_is_written(kit):
    hub, made = kit
    acme, acme_rep = made["ACME"]
    with hub.engine.begin() as conn:
        created = co.book(conn, acme_rep, std(hub), NOW)
        co.cancel(conn, acme_rep, created.number, NOW)
    assert refusal(hub.engine, lambda c: co.confirm_payment(
        c, acme, created.number, "BANK-2", "staff:1", NOW)) == "payment_not_placed"
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(orders.c.state).where(
            orders.c.id == created.order_id)).scalar() == "cancelled"
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger_entries)).scalar() == 0


def test_representatives_sign_in_to_their_own_customer_only(kit):
    hub, made = kit
    (acme, acme_rep), (beta, beta_rep) = made["ACME"], made["BETA"]
    with hub.engine.begin() as conn:
        who = customers.check_rep_sign_in(conn, "acme-rep", PASSWORD, NOW)
        assert (who.id, who.customer_id, who.customer_code) == (acme_rep.id, acme, "ACME")
        assert customers.check_rep_sign_in(conn, "acme-rep", "wrong password!", NOW) is None
        assert customers.check_rep_sign_in(conn, "nobody", PASSWORD, NOW) is None
        created = co.book(conn, beta_rep, std(hub), NOW)
    assert refusal(hub.engine, lambda c: co.order_of(c, acme, created.number)) == \
        "unknown_customer_order"
    assert refusal(hub.engine, lambda c: co.cancel(c, acme_rep, created.number, NOW)) == \
        "unknown_customer_order"
    with hub.engine.begin() as conn:
        customers.set_customer_state(conn, beta, "suspended", "t", NOW)
        assert customers.check_rep_sign_in(conn, "beta-rep", PASSWORD, NOW) is None
        assert customers.signed_in_rep(conn, beta_rep.id, beta, NOW) is None
    assert refusal(hub.engine, lambda c: co.book(c, beta_rep, std(hub), NOW)) == \
        "customer_suspended"
    with hub.engine.begin() as conn:
        customers.sign_out_everywhere(conn, acme_rep.id, NOW)
        assert customers.signed_in_rep(conn, acme_rep.id, acme, NOW - timedelta(hours=1)) \
            is None
        assert customers.signed_in_rep(conn, acme_rep.id, acme, NOW + timedelta(seconds=1))


def test_notices_reach_their_customer_and_notices_to_all_reach_everyone(kit):
    hub, made = kit
    (acme, _), (beta, _) = made["ACME"], made["BETA"]
    with hub.engine.begin() as conn:
        customers.post_notice(conn, acme, "For ACME", "Pay by Friday.", "t", NOW)
        customers.post_notice(conn, None, "For all", "New session on sale.", "t", NOW)
        assert {n.title for n in customers.notices_for(conn, acme)} == {"For ACME", "For all"}
        assert {n.title for n in customers.notices_for(conn, beta)} == {"For all"}
    assert refusal(hub.engine, lambda c: customers.post_notice(
        c, acme, "x", "", "t", NOW)) == "bad_customer_request"
