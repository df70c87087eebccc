"""Seats for the lottery's winners after the choosing window: every winner gets exactly what
they won of the given seats, each group in one row whenever the seats allow it (checked against
an exhaustive search on small halls), then in adjacent rows, and the same input always gives
the same answer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.lottery.assign import AssignError, FreeSeat, Want, assign


def hall(rows: dict[tuple[int, str], list[int]]) -> list[FreeSeat]:
    """Free seats of rows (zone, row key) -> positions, ranked row by row in the order given,
    nearer the start of a row better; seat ids from 1 in the same order."""
    seats = []
    for (zone, row_key), positions in rows.items():
        for p in positions:
            seats.append(FreeSeat(len(seats) + 1, zone, row_key, p, len(seats) + 1))
    return seats


def wants_of(*quantities: int) -> list[Want]:
    return [Want(f"W{i}", q) for i, q in enumerate(quantities)]


def runs_of(seats: list[FreeSeat]) -> list[list[FreeSeat]]:
    """Maximal stretches of seats side by side in one row (the test's own reading)."""
    rows: dict[tuple[int, str], list[FreeSeat]] = {}
    for s in seats:
        rows.setdefault((s.zone_id, s.row_key), []).append(s)
    runs = []
    for members in rows.values():
        members.sort(key=lambda s: s.position)
        run = [members[0]]
        for s in members[1:]:
            if s.position == run[-1].position + 1:
                run.append(s)
            else:
                runs.append(run)
                run = [s]
        runs.append(run)
    return runs


def in_one_row(seats: list[FreeSeat]) -> bool:
    positions = sorted(s.position for s in seats)
    return (len({(s.zone_id, s.row_key) for s in seats}) == 1
            and positions == list(range(positions[0], positions[0] + len(seats))))


def free_after(seats: list[FreeSeat], got: dict[str, tuple[int, ...]]) -> list[FreeSeat]:
    taken = {i for ids in got.values() for i in ids}
    return [s for s in seats if s.seat_id not in taken]


def isolated(free: list[FreeSeat]) -> list[FreeSeat]:
    return [run[0] for run in runs_of(free) if len(run) == 1] if free else []


def one_row_possible(seats: list[FreeSeat], quantities: list[int]) -> bool:
    """Whether every want fits in one run: each run holds any wants whose total it holds,
    so this tries every way of sharing the wants out among the runs."""
    room = [len(run) for run in runs_of(seats)] if seats else []

    def share(i: int) -> bool:
        if i == len(quantities):
            return True
        for r, left in enumerate(room):
            if left >= quantities[i]:
                room[r] -= quantities[i]
                if share(i + 1):
                    return True
                room[r] += quantities[i]
        return False

    return share(0)


def check_answer(seats: list[FreeSeat], wants: list[Want], got: dict[str, tuple[int, ...]]):
    given_ids = {s.seat_id for s in seats}
    assert list(got) == [w.key for w in wants]
    every = [i for ids in got.values() for i in ids]
    assert len(every) == len(set(every)), "a seat was given twice"
    assert set(every) <= given_ids
    for w in wants:
        assert len(got[w.key]) == w.quantity


# --- examples -------------------------------------------------------------------------------

def test_groups_that_fit_sit_side_by_side_in_one_row():
    seats = hall({(1, "L1/1"): list(range(1, 11))})
    got = assign(seats, wants_of(3, 2, 4))
    by_id = {s.seat_id: s for s in seats}
    for ids in got.values():
        assert in_one_row([by_id[i] for i in ids])


def test_a_want_of_two_takes_the_run_it_leaves_no_single_seat_in():
    # runs of 3 and 4: the shortest run that fits (3) would strand a seat; 4 then 3 does not
    seats = hall({(1, "A"): [1, 2, 3], (1, "B"): [1, 2, 3, 4]})
    got = assign(seats, wants_of(2, 2))
    free = free_after(seats, got)
    assert isolated(free) == []
    assert len(free) == 3


def test_a_single_seat_left_by_a_full_row_is_at_an_end_of_it():
    seats = hall({(1, "A"): [1, 2, 3, 4, 5]})
    got = assign(seats, wants_of(2, 2))
    (free,) = free_after(seats, got)
    assert free.position in (1, 5)


def test_two_seats_left_in_a_row_stay_side_by_side():
    seats = hall({(1, "A"): [1, 2, 3, 4, 5, 6]})
    got = assign(seats, wants_of(2, 2))
    free = free_after(seats, got)
    assert sorted(s.position for s in free) in ([1, 2], [3, 4], [5, 6])


def test_a_single_free_seat_is_filled_by_a_want_of_one_before_a_run_is_broken():
    # seat 1 stands alone (2 is sold); seats 3..7 are a run of five
    seats = hall({(1, "A"): [1, 3, 4, 5, 6, 7]})
    got = assign(seats, wants_of(1, 2))
    assert got["W0"] == (seats[0].seat_id,)
    assert isolated(free_after(seats, got)) == []


def test_the_earlier_want_of_a_size_gets_the_better_row():
    seats = hall({(1, "front"): [1, 2], (1, "back"): [1, 2]})
    front = (seats[0].seat_id, seats[1].seat_id)
    assert assign(seats, [Want("FIRST1", 2), Want("LATER1", 2)])["FIRST1"] == front
    assert assign(seats, [Want("LATER1", 2), Want("FIRST1", 2)])["LATER1"] == front


def test_a_group_no_row_holds_is_split_over_adjacent_rows_one_run_each():
    seats = hall({(1, "A"): [1, 2, 3], (1, "B"): [1, 2, 3], (1, "C"): [1, 2, 3]})
    got = assign(seats, wants_of(4))
    rows = sorted({s.row_key for s in seats if s.seat_id in got["W0"]})
    assert rows == ["A", "B"]
    # the whole of row A and one seat of B: no seat is left alone
    assert isolated(free_after(seats, got)) == []


def test_a_split_group_takes_two_adjacent_rows_not_rows_with_one_between():
    # row A's single seat goes to the want of one; the four then sit in B and C, not A and C
    seats = hall({(1, "A"): [1], (1, "B"): [1, 2, 3], (1, "C"): [1, 2, 3]})
    got = assign(seats, wants_of(4, 1))
    by_id = {s.seat_id: s for s in seats}
    assert {by_id[i].row_key for i in got["W0"]} == {"B", "C"}
    assert got["W1"] == (seats[0].seat_id,)


def test_rows_of_two_zones_are_never_adjacent_but_the_seats_are_still_given():
    seats = hall({(1, "A"): [1, 2], (2, "A"): [1, 2], (1, "B"): [5]})
    got = assign(seats, wants_of(4))
    check_answer(seats, wants_of(4), got)
    zones = {s.zone_id for s in seats if s.seat_id in got["W0"]}
    # zone 1's two adjacent rows hold only three; the group goes anywhere
    assert zones == {1, 2}


def test_more_wanted_than_there_are_seats_is_refused():
    seats = hall({(1, "A"): [1, 2, 3]})
    with pytest.raises(AssignError) as refused:
        assign(seats, wants_of(2, 2))
    assert refused.value.code == "not_enough_seats"
    assert refused.value.params == {"wanted": 4, "free": 3}


@pytest.mark.parametrize("seats, wants, code", [
    ([FreeSeat(1, 1, "A", 1, 1), FreeSeat(1, 1, "A", 2, 2)], wants_of(1), "seat_twice"),
    ([FreeSeat(1, 1, "A", 1, 1), FreeSeat(2, 1, "A", 1, 2)], wants_of(1), "place_twice"),
    (hall({(1, "A"): [1, 2]}), [Want("SAME01", 1), Want("SAME01", 1)], "want_twice"),
    (hall({(1, "A"): [1, 2]}), wants_of(0), "bad_quantity"),
])
def test_malformed_input_is_refused(seats, wants, code):
    with pytest.raises(AssignError) as refused:
        assign(seats, wants)
    assert refused.value.code == code


def test_nobody_left_to_seat_gets_nothing():
    assert assign(hall({(1, "A"): [1, 2]}), []) == {}


def test_groups_are_searched_into_rows_where_taking_the_obvious_run_first_fails():
    # the four into the run of six (leaving two) strands a three; the four into five fits all
    seats = hall({(1, "A"): [1, 2, 3, 4, 5], (1, "B"): [1, 2, 3, 4, 5, 6]})
    got = assign(seats, wants_of(4, 3, 3))
    by_id = {s.seat_id: s for s in seats}
    assert all(in_one_row([by_id[i] for i in ids]) for ids in got.values())
    assert {by_id[i].row_key for i in got["W0"]} == {"A"}


def test_a_full_hall_of_mixed_groups_all_sit_in_one_row():
    rows = {(z, f"R{r}"): list(range(1, 21 + (r % 7))) for z in (1, 2) for r in range(30)}
    seats = hall(rows)
    quantities = [1 + (i * 7) % 4 for i in range(len(seats))]
    total, kept = 0, []
    for q in quantities:
        if total + q <= len(seats):
            kept.append(q)
            total += q
    wants = wants_of(*kept)
    got = assign(seats, wants)
    check_answer(seats, wants, got)
    by_id = {s.seat_id: s for s in seats}
    assert all(in_one_row([by_id[i] for i in ids]) for ids in got.values())
    assert total == len(seats)  # every seat given: none left over


# --- properties -----------------------------------------------------------------------------

@st.composite
def small_halls(draw, most_seats: int = 12):
    """Up to ``most_seats`` free seats in one or two zones of up to three rows, with gaps where
    seats are sold, ranked in any order; and wants that fit in total."""
    rows: dict[tuple[int, str], list[int]] = {}
    for zone in range(1, draw(st.integers(1, 2)) + 1):
        for r in range(draw(st.integers(1, 3))):
            # one or two runs of seats with a sold seat between them
            lengths = draw(st.lists(st.integers(1, 8), min_size=1, max_size=2))
            start = draw(st.integers(1, 3))
            positions = list(range(start, start + lengths[0]))
            if len(lengths) == 2:
                positions += range(positions[-1] + 2, positions[-1] + 2 + lengths[1])
            rows[zone, f"L1/{r + 1}"] = positions
    places = [(k, p) for k, ps in rows.items() for p in ps][:most_seats]
    ranks = draw(st.permutations(range(1, len(places) + 1)))
    ids = draw(st.permutations(range(100, 100 + len(places))))
    seats = [FreeSeat(i, k[0], k[1], p, rank) for (k, p), rank, i in zip(places, ranks, ids,
                                                                              strict=True)]
    quantities = draw(st.lists(st.integers(1, 5), max_size=5))
    while sum(quantities) > len(seats):
        quantities.pop()
    return seats, wants_of(*quantities)


@given(small_halls(), st.randoms(use_true_random=False))
@settings(max_examples=400)
def test_every_want_sits_in_one_row_whenever_some_sharing_out_allows_it(case, chance):
    seats, wants = case
    got = assign(seats, wants)
    check_answer(seats, wants, got)
    by_id = {s.seat_id: s for s in seats}
    if one_row_possible(seats, [w.quantity for w in wants]):
        for ids in got.values():
            assert in_one_row([by_id[i] for i in ids])
    shuffled = list(seats)
    chance.shuffle(shuffled)
    assert assign(shuffled, wants) == got


@given(small_halls(most_seats=40))
@settings(max_examples=100)
def test_the_same_seats_and_wants_give_the_same_seats_in_any_seat_order(case):
    seats, wants = case
    got = assign(seats, wants)
    check_answer(seats, wants, got)
    assert assign(list(reversed(seats)), wants) == got
    assert assign(sorted(seats, key=lambda s: -s.rank), list(wants)) == got


@given(st.lists(st.integers(1, 10), min_size=1, max_size=60),
       st.lists(st.integers(1, 6), min_size=1, max_size=30))
@settings(max_examples=100)
def test_every_want_gets_exactly_its_seats_however_short_the_rows(quantities, row_lengths):
    seats = hall({(1 + r // 5, f"R{r}"): list(range(1, n + 1))
                  for r, n in enumerate(row_lengths)})
    while sum(quantities) > len(seats):
        quantities.pop()
    wants = wants_of(*quantities)
    check_answer(seats, wants, assign(seats, wants))
