"""Best-available runs chosen by the database: seats side by side in one row, the best
(lowest total rank) first, never through a seat that is held, sold or reserved for someone
else — on both databases, at fixed times."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.inventory import holds
from cloud.inventory.holds import (
    best_runs,
    free_ways,
    hold_best,
    hold_seats,
    takeable_seats,
)
from cloud.inventory.seats import claim, reserve
from tests.cloud.orderkit import NOW, bare_order, build

# zone A, row L1/1 (vip): seats 1..6 at positions 1..6, ranked 3:1, 4:2, 2:3, 5:4, 1:5, 6:6;
# row L1/2 (std): the same shape, ranks 7..12


@pytest.fixture
def hub(hub_url, key_store):
    h = build(hub_url)
    yield h
    h.engine.dispose()


def runs(hub, n, now=NOW, customer=None, limit=16):
    """The runs found, the same whether a single seat is looked for in one pass or in each way
    a seat is free (as holds do)."""
    with hub.engine.connect() as conn:
        takeable = takeable_seats(hub.session, now, customer)
        found = best_runs(conn, hub.zones["A"], n, takeable, limit)
        assert best_runs(conn, hub.zones["A"], n, takeable, limit, free_ways(now)) == found
        return found


def test_runs_are_adjacent_seats_of_one_row_best_total_rank_first(hub):
    assert runs(hub, 2) == [("L1/1", 3), ("L1/1", 2), ("L1/1", 4), ("L1/1", 1), ("L1/1", 5),
                            ("L1/2", 3), ("L1/2", 2), ("L1/2", 4), ("L1/2", 1), ("L1/2", 5)]
    assert runs(hub, 1, limit=3) == [("L1/1", 3), ("L1/1", 4), ("L1/1", 2)]
    assert runs(hub, 6) == [("L1/1", 1), ("L1/2", 1)]
    assert runs(hub, 7) == []  # no row has seven seats


def test_runs_never_cross_a_held_sold_or_reserved_seat(hub):
    held, sold, kept = hub.seat("A", "1", 3), hub.seat("A", "1", 5), hub.seat("A", "2", 4)
    with hub.engine.begin() as conn:
        hold_seats(conn, hub.session, [held], bare_order(conn), NOW + timedelta(minutes=15), NOW)
        claim(conn, hub.session, sold, None, NOW)
        reserve(conn, hub.session, [kept], "Ms Li", NOW + timedelta(days=3650))
    assert runs(hub, 2) == [("L1/1", 1), ("L1/2", 2), ("L1/2", 1), ("L1/2", 5)]
    # the customer the seat is kept for may take it
    assert ("L1/2", 3) in runs(hub, 2, customer="Ms Li")
    assert runs(hub, 4) == []
    # a hold past its deadline stops counting at once
    assert runs(hub, 2, now=NOW + timedelta(minutes=16))[:2] == [("L1/1", 3), ("L1/1", 2)]


def test_hold_best_takes_the_best_run_and_a_buyer_after_takes_the_next(hub):
    until = NOW + timedelta(minutes=15)
    seat = {(row, n): hub.seat("A", row, n) for row in ("1", "2") for n in range(1, 7)}
    with hub.engine.begin() as conn:
        first = hold_best(conn, hub.session, hub.zones["A"], 2, bare_order(conn), until, NOW)
        second = hold_best(conn, hub.session, hub.zones["A"], 2, bare_order(conn), until, NOW)
        third = hold_best(conn, hub.session, hub.zones["A"], 3, bare_order(conn), until, NOW)
    assert set(first) == {seat["1", 3], seat["1", 4]}
    assert set(second) == {seat["1", 1], seat["1", 2]}
    assert set(third) == {seat["2", n] for n in (2, 3, 4)}


def test_a_loser_tries_the_best_run_first_then_the_others_spread(hub):
    candidates = [("R", p) for p in range(1, 30)]
    assert holds._spread(candidates, True)[0] == ("R", 1)
    assert sorted(holds._spread(candidates, True)) == candidates
    orders_seen = {tuple(holds._spread(candidates, False)) for _ in range(5)}
    assert len(orders_seen) > 1 and all(sorted(o) == candidates for o in orders_seen)


def _two_buyers_at_once(hub, n: int) -> tuple[dict, dict]:
    """What two buyers of ``n`` seats hold, the second asking while the first's transaction
    is still open (its wait would fail, not hang)."""
    until = NOW + timedelta(minutes=15)
    with hub.engine.connect() as a, hub.engine.connect() as b:
        with a.begin():
            mine = bare_order(a)
        with b.begin():
            theirs = bare_order(b)
        a.begin()
        b.begin()
        b.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
        got_a = hold_best(a, hub.session, hub.zones["A"], n, mine, until, NOW)
        got_b = hold_best(b, hub.session, hub.zones["A"], n, theirs, until, NOW)
        b.commit()
        a.commit()
    return got_a, got_b


# SQLite has one writer at a time: nobody else can be taking a run there
@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_a_buyer_skips_a_run_another_transaction_is_taking_on_postgresql(hub):
    got_a, got_b = _two_buyers_at_once(hub, 2)
    assert set(got_a) == {hub.seat("A", "1", 3), hub.seat("A", "1", 4)}
    assert not set(got_a) & set(got_b) and len(got_b) == 2


def test_a_single_seat_is_the_best_free_one_a_lapsed_hold_counting_as_free(hub):
    until = NOW + timedelta(minutes=15)
    with hub.engine.begin() as conn:
        first = hold_best(conn, hub.session, hub.zones["A"], 1, bare_order(conn), until, NOW)
        second = hold_best(conn, hub.session, hub.zones["A"], 1, bare_order(conn), until, NOW)
        later = NOW + timedelta(minutes=16)  # both holds have lapsed
        third = hold_best(conn, hub.session, hub.zones["A"], 1, bare_order(conn), until, later)
        std = hold_best(conn, hub.session, hub.zones["A"], 1, bare_order(conn), until, NOW,
                        category="std")
        held = conn.execute(sa.select(sa.func.count()).select_from(holds.session_seats).where(
            holds.session_seats.c.status == "held")).scalar_one()
    assert first == {hub.seat("A", "1", 3): hub.zones["A"]}
    assert second == {hub.seat("A", "1", 4): hub.zones["A"]}
    assert third == first  # rank 1 again: its hold lapsed
    assert std == {hub.seat("A", "2", 3): hub.zones["A"]}
    assert held == 3  # one row per hold: the lapsed one was taken over, not added to


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("candidates", [holds.SEAT_CANDIDATES, 1])
def test_a_buyer_of_one_seat_skips_the_seat_another_transaction_is_taking(
        hub, candidates, monkeypatch):
    """With one candidate, the one taken by the other transaction, the search goes on as for
    a run (whose losers spread over the next-best seats at random)."""
    monkeypatch.setattr(holds, "SEAT_CANDIDATES", candidates)
    got_a, got_b = _two_buyers_at_once(hub, 1)
    assert got_a == {hub.seat("A", "1", 3): hub.zones["A"]}
    if candidates > 1:
        assert got_b == {hub.seat("A", "1", 4): hub.zones["A"]}
    else:
        assert len(got_b) == 1 and not got_b.keys() & got_a.keys()
