"""Refunds with approval, on both databases at fixed times: a session's refund policy (window,
fee), a request by one person approved by another, the money back through the order's payment
(reserved in the approval's transaction, asked of the provider by the worker's job), tickets
revoked at approval and their seats back on sale only when the refund is final; races of two
approvals and of two requests; a cancelled session refunded in batches, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloud.core.audit import audit_log
from cloud.core.errors import HubError
from cloud.core.jobs import Tasks, jobs, run_one
from cloud.fleet import appliances
from cloud.fleet.tables import entries
from cloud.inventory.sessions import REFUND_CANCELLED_JOB, cancel_session
from cloud.inventory.tables import session_seats
from cloud.payments.capturing import place
from cloud.payments.checkout import start_payment
from cloud.payments.offline import OfflineProvider
from cloud.payments.providers import RefundStatus, Shown
from cloud.payments.refund_approval import (
    REQUEST_JOB,
    approve_refund,
    refund_cancelled_handler,
    refund_session,
    remaining,
    request_refund_handler,
    retry_refund,
)
from cloud.payments.refund_command import KILL_REFUND_AFTER
from cloud.payments.refunds import settle_refund
from cloud.payments.tables import payment_refunds, payments
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order
from cloud.sales.refunds import (
    policy,
    quote,
    reject_request,
    request_refund,
    set_policy,
)
from cloud.sales.selling import sell
from cloud.sales.tables import orders, refund_requests, tickets
from cloud.sales.tickets import TicketSpec, revoke_ticket
from tests.cloud.orderkit import NOW, START, build

ROOT = Path(__file__).resolve().parents[2]


class FakeOnline:
    """An online provider that takes payments at once and answers refunds as told."""

    name = "wechat"

    def __init__(self, answer: str = "processing"):
        self.answer, self.asked = answer, []

    def create(self, out_trade_no, amount, description, expires_at, notify_url):
        return Shown(settled=True, reference=f"wx-{out_trade_no}")

    def refund(self, out_trade_no, out_refund_no, amount, total, reason, notify_url):
        self.asked.append((out_refund_no, amount))
        return RefundStatus(self.answer, f"wxr-{out_refund_no}")

    def refund_query(self, out_trade_no, out_refund_no):
        return RefundStatus(self.answer, f"wxr-{out_refund_no}")


@pytest.fixture
def hub(hub_url, key_store):
    h = build(hub_url)
    yield h
    h.engine.dispose()


def paid_order(h, *places, provider=None, now=NOW):
    """An order of these seats (zone, row, number), paid through ``provider`` (offline)."""
    provider = provider or OfflineProvider()
    seat_ids = [h.seat(*p) for p in places]
    with h.engine.begin() as conn:
        made = create_order(conn, OrderRequest(h.session, tuple(
            LineRequest(seat_id=s) for s in seat_ids), actor="clerk"), now)
        started = start_payment(conn, provider, made.order_id, made.total, "t",
                                made.expires_at, now)
        captured = place(conn, started.outcome, now)
    return made, [t.id for t in captured.tickets]


def refused(code, fn, *args, **kw):
    with pytest.raises(HubError) as e:
        fn(*args, **kw)
    assert e.value.code == code, e.value
    return e.value


def in_tx(h, fn, *args, **kw):
    with h.engine.begin() as conn:
        return fn(conn, *args, **kw)


def seat_status(h, seat_id):
    with h.engine.connect() as conn:
        return conn.execute(sa.select(session_seats.c.status).where(
            session_seats.c.session_id == h.session,
            session_seats.c.seat_id == seat_id)).scalar()


def one(h, query):
    with h.engine.connect() as conn:
        return conn.execute(query).one()


def test_the_policy_is_kept_per_session_audited_and_sets_the_fee_and_window(hub):
    with hub.engine.connect() as conn:
        default = policy(conn, hub.session)
    assert (default.fee_kind, default.refundable_until, default.explicit) == ("none", START, False)
    refused("bad_refund_policy", in_tx, hub, set_policy, hub.session, None, "percent", 101, "a")
    refused("bad_refund_policy", in_tx, hub, set_policy, hub.session, None, "fixed", -1, "a")
    until = START - timedelta(days=1)
    p = in_tx(hub, set_policy, hub.session, until, "percent", 10, "manager", NOW)
    assert (p.refundable_until, p.fee(38000), p.fee(5)) == (until, 3800, 0)
    p = in_tx(hub, set_policy, hub.session, until, "fixed", 5000, "manager", NOW)
    assert (p.fee(38000), p.fee(3000)) == (5000, 3000)  # never more than the ticket's price
    made, ids = paid_order(hub, ("A", "1", 1), ("A", "2", 1))
    with hub.engine.connect() as conn:
        q = quote(conn, made.order_id, None, NOW)
        assert (q.gross, q.fee, q.amount) == (88000 + 38000, 10000, 116000)
        refused("refund_window_closed", quote, conn, made.order_id, None, until + timedelta(1))
        actions = conn.execute(sa.select(audit_log.c.action, audit_log.c.actor).where(
            audit_log.c.action == "refund_policy.set")).all()
    assert [tuple(a) for a in actions] == [("refund_policy.set", "manager")] * 2


def test_a_refund_is_asked_by_one_person_and_approved_by_another_then_seats_return(hub):
    in_tx(hub, set_policy, hub.session, None, "percent", 10, "manager", NOW)
    made, (first, second) = paid_order(hub, ("A", "1", 1), ("A", "2", 1))
    rid = in_tx(hub, request_refund, made.order_id, [second], "clerk", "ill", NOW)
    r = one(hub, sa.select(refund_requests).where(refund_requests.c.id == rid))
    assert (r.state, r.gross, r.fee, r.amount) == ("pending", 38000, 3800, 34200)
    refused("maker_cannot_approve", in_tx, hub, approve_refund, rid, "clerk", NOW)
    refused("refund_already_requested", in_tx, hub, request_refund, made.order_id, [second],
            "clerk2", "", NOW)
    assert in_tx(hub, approve_refund, rid, "super", NOW, supervisor=True) == "succeeded"
    refused("refund_not_pending", in_tx, hub, approve_refund, rid, "other", NOW)
    pay = one(hub, sa.select(payments).where(payments.c.order_id == made.order_id))
    refund = one(hub, sa.select(payment_refunds))
    assert (pay.refunded, refund.amount, refund.state) == (34200, 34200, "succeeded")
    assert seat_status(hub, hub.seat("A", "2", 1)) == "available"
    assert seat_status(hub, hub.seat("A", "1", 1)) == "sold"
    o = one(hub, sa.select(orders.c.state).where(orders.c.id == made.order_id))
    assert o.state == "partially_refunded"
    with hub.engine.connect() as conn:
        actions = set(conn.execute(sa.select(audit_log.c.action)).scalars())
    assert {"refund.request", "refund.approve", "refund.succeeded", "ticket.refund"} <= actions
    rid2 = in_tx(hub, request_refund, made.order_id, None, "clerk", "", NOW)
    assert in_tx(hub, approve_refund, rid2, "super", NOW) == "succeeded"
    assert one(hub, sa.select(orders.c.state).where(orders.c.id == made.order_id)).state \
        == "refunded"
    assert one(hub, sa.select(payments.c.refunded)).refunded == 34200 + 79200


def test_a_rejected_request_frees_its_tickets_and_needs_a_reason(hub):
    made, (t,) = paid_order(hub, ("A", "1", 1))
    rid = in_tx(hub, request_refund, made.order_id, [t], "clerk", "", NOW)
    refused("decision_note_required", in_tx, hub, reject_request, rid, "super", "no", NOW)
    refused("maker_cannot_approve", in_tx, hub, reject_request, rid, "clerk", "changed", NOW)
    in_tx(hub, reject_request, rid, "super", "outside the policy", NOW)
    assert one(hub, sa.select(tickets.c.state).where(tickets.c.id == t)).state == "issued"
    assert in_tx(hub, request_refund, made.order_id, [t], "clerk", "", NOW) != rid


def test_an_online_refund_revokes_at_approval_and_returns_seats_only_when_final(hub):
    wechat = FakeOnline("processing")
    made, (t,) = paid_order(hub, ("A", "1", 1), provider=wechat)
    seat = hub.seat("A", "1", 1)
    rid = in_tx(hub, request_refund, made.order_id, [t], "clerk", "", NOW)
    assert in_tx(hub, approve_refund, rid, "super", NOW) == "approved"
    assert one(hub, sa.select(tickets.c.state).where(tickets.c.id == t)).state == "refunded"
    assert seat_status(hub, seat) == "sold" and wechat.asked == []  # no call in the approval
    tasks = Tasks()
    tasks.register(REQUEST_JOB, request_refund_handler({"wechat": wechat}, lambda n: ""),
                   apart=True)
    assert run_one(hub.engine, tasks, "w1", NOW)
    assert len(wechat.asked) == 1 and seat_status(hub, seat) == "sold"  # still processing
    wechat.answer = "succeeded"
    refund_id = one(hub, sa.select(payment_refunds.c.id)).id
    in_tx(hub, settle_refund, wechat, refund_id, NOW)
    assert one(hub, sa.select(refund_requests.c.state)).state == "succeeded"
    assert seat_status(hub, seat) == "available"
    assert one(hub, sa.select(orders.c.state)).state == "refunded"


def test_a_refund_the_provider_refuses_leaves_the_request_failed_and_the_tickets_revoked(hub):
    wechat = FakeOnline("failed")
    made, (t,) = paid_order(hub, ("A", "1", 1), provider=wechat)
    rid = in_tx(hub, request_refund, made.order_id, [t], "clerk", "", NOW)
    in_tx(hub, approve_refund, rid, "super", NOW)
    tasks = Tasks()
    tasks.register(REQUEST_JOB, request_refund_handler({"wechat": wechat}, lambda n: ""),
                   apart=True)
    run_one(hub.engine, tasks, "w1", NOW)
    assert one(hub, sa.select(refund_requests.c.state)).state == "failed"
    assert one(hub, sa.select(tickets.c.state)).state == "refunded"
    assert seat_status(hub, hub.seat("A", "1", 1)) == "sold"
    assert one(hub, sa.select(payments.c.refunded)).refunded == 0  # the money is free again
    assert one(hub, sa.select(orders.c.state)).state == "paid"
    assert one(hub, sa.select(jobs.c.state)).state == "done"
    # sent again by an approver, it succeeds: only then is the seat back on sale
    wechat.answer = "succeeded"
    assert in_tx(hub, retry_refund, rid, "super-2", NOW) == "approved"
    refused("refund_not_failed", in_tx, hub, retry_refund, rid, "super-2", NOW)
    assert run_one(hub.engine, tasks, "w1", NOW)
    assert one(hub, sa.select(refund_requests.c.state)).state == "succeeded"
    assert seat_status(hub, hub.seat("A", "1", 1)) == "available"
    with hub.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(payment_refunds.c.state)).scalars()) == [
            "failed", "succeeded"]


def test_a_ticket_that_admitted_someone_needs_the_supervisors_reason(hub):
    made, (t,) = paid_order(hub, ("A", "1", 1))
    _admit(hub, t)
    rid = in_tx(hub, request_refund, made.order_id, [t], "clerk", "", NOW)
    refused("admitted_needs_supervisor", in_tx, hub, approve_refund, rid, "super", NOW)
    refused("reason_required", in_tx, hub, approve_refund, rid, "super", NOW, supervisor=True)
    assert in_tx(hub, approve_refund, rid, "super", NOW, supervisor=True,
                 note="the show was stopped") == "succeeded"


def _admit(h, ticket_id):
    """An entry an appliance reported: the ticket admitted someone."""
    with h.engine.begin() as conn:
        appliance = appliances.register(conn, h.venue, "North gate box").id
        conn.execute(sa.insert(entries).values(
            id="e-1", appliance_id=appliance, venue_id=h.venue, seq=1, at=NOW, lane="N1",
            direction="in", ticket_id=ticket_id, session_id=h.session, admitted=True,
            reason="OK", cursor=1, received_at=NOW))


def test_two_approvals_race_and_only_one_succeeds(hub):
    made, (t,) = paid_order(hub, ("A", "1", 1))
    rid = in_tx(hub, request_refund, made.order_id, [t], "clerk", "", NOW)
    results = _race(hub, [lambda conn, who=who: approve_refund(conn, rid, who, NOW)
                          for who in ("super-1", "super-2")])
    assert sorted(results) == ["ok", "refund_not_pending"]
    assert one(hub, sa.select(payments.c.refunded)).refunded == 88000


def test_two_requests_for_one_ticket_race_and_only_one_is_made(hub):
    made, (t,) = paid_order(hub, ("A", "1", 1))
    results = _race(hub, [lambda conn, who=who: request_refund(conn, made.order_id, [t], who,
                                                               "", NOW)
                          for who in ("clerk-1", "clerk-2")])
    assert sorted(results) == ["ok", "refund_already_requested"]


def _race(h, calls):
    barrier, results = threading.Barrier(len(calls)), []

    def run(call):
        barrier.wait()
        try:
            with h.engine.begin() as conn:
                call(conn)
            results.append("ok")
        except HubError as e:
            results.append(e.code)
        except sa.exc.OperationalError as e:  # SQLite: the loser may be told the file is busy
            results.append(f"busy: {e}")

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results


def test_the_instant_refund_on_the_ticket_page_still_gives_the_seat_back_at_once(hub):
    made, (t,) = paid_order(hub, ("A", "1", 1))
    in_tx(hub, revoke_ticket, t, "refunded", NOW)
    assert seat_status(hub, hub.seat("A", "1", 1)) == "available"
    refused("order_not_refundable", in_tx, hub, request_refund, made.order_id, [t], "c", "",
            NOW)


def test_a_cancelled_session_refunds_every_paid_order_once_even_when_stopped(hub):
    made = [paid_order(hub, ("A", "1", n))[0] for n in range(1, 6)]
    booth_seat = hub.seat("A", "2", 1)
    with hub.engine.begin() as conn:
        booth = sell(conn, hub.session, [TicketSpec(seat_id=booth_seat)],
                     actor="clerk", now=NOW)
    in_tx(hub, request_refund, made[0].order_id, None, "clerk", "", NOW)  # already asked
    refused("session_not_cancelled", refund_session, hub.engine, hub.session, NOW)
    in_tx(hub, cancel_session, hub.session, "manager")

    class Killed(Exception):
        pass

    def stop(report):
        raise Killed

    with pytest.raises(Killed):
        refund_session(hub.engine, hub.session, NOW, batch=2, after_batch=stop)
    assert remaining(hub.engine, hub.session) == 3
    report = refund_session(hub.engine, hub.session, NOW, batch=2)
    assert (report.orders, report.finished, report.failures) == (3, 3, [])
    assert remaining(hub.engine, hub.session) == 0
    assert refund_session(hub.engine, hub.session, NOW).orders == 0
    with hub.engine.connect() as conn:
        bulk = conn.execute(sa.select(refund_requests).where(refund_requests.c.bulk)).all()
        states = dict(conn.execute(sa.select(orders.c.id, orders.c.state)).all())
    assert len(bulk) == 5 and {(r.maker, r.checker, r.state) for r in bulk} == {
        ("manager", "system:session-cancelled", "succeeded")}
    assert len({r.order_id for r in bulk}) == 5
    assert states[made[0].order_id] == "paid"  # its own request waits for its approver
    assert all(states[m.order_id] == "refunded" for m in made[1:])
    assert booth and sum(s == "refunded" for s in states.values()) == 5


def refund_cli(url: str, session: int, kill_after: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, KILL_REFUND_AFTER: str(kill_after or "")}
    return subprocess.run([sys.executable, "-m", "cloud.cli", "--db", url, "refund-session",
                           str(session), "--batch", "2"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_bulk_refund_killed_between_batches_resumes_and_refunds_each_order_once(
        hub, hub_url):
    made = [paid_order(hub, ("A", "1", n))[0] for n in range(1, 6)]
    in_tx(hub, cancel_session, hub.session, "manager")
    killed = refund_cli(hub_url, hub.session, kill_after=1)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "refunding orders: 2/5" in killed.stderr
    assert remaining(hub.engine, hub.session) == 3
    done = refund_cli(hub_url, hub.session)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["orders"], report["tickets"], report["failures"]) == (3, 3, [])
    assert report["amount"] == 3 * 88000
    with hub.engine.connect() as conn:
        per_order = Counter(conn.execute(sa.select(refund_requests.c.order_id)).scalars())
        refunded = conn.execute(sa.select(sa.func.sum(payments.c.refunded))).scalar()
    assert per_order == Counter(m.order_id for m in made)  # each exactly once
    assert refunded == 5 * 88000


def test_cancelling_a_session_has_the_worker_refund_its_paid_orders(hub):
    made, _ids = paid_order(hub, ("A", "1", 1))
    in_tx(hub, cancel_session, hub.session, "manager", NOW)
    tasks = Tasks()
    tasks.register(REFUND_CANCELLED_JOB, refund_cancelled_handler, apart=True)
    assert run_one(hub.engine, tasks, "w1", NOW)
    assert one(hub, sa.select(jobs.c.state).where(
        jobs.c.kind == REFUND_CANCELLED_JOB)).state == "done"
    r = one(hub, sa.select(refund_requests))
    assert (r.order_id, r.maker, r.state, r.amount) == (made.order_id, "manager", "succeeded",
                                                        88000)
