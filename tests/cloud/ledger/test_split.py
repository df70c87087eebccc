"""Splitting money never creates or loses a fen (largest remainder), for any amount and any
weights; a payment's refunds, whatever their sizes and order, give back exactly its split
and never more than a part got."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.ledger.split import Rule, allocate, reversal, shares

weights = st.lists(st.integers(0, 10_000), min_size=1, max_size=8).filter(any)


@given(total=st.integers(0, 10**12), weights=weights)
def test_allocate_sums_to_the_total_and_stays_within_a_fen_of_each_share(total, weights):
    got = allocate(total, weights)
    assert sum(got) == total
    for part, w in zip(got, weights, strict=True):
        exact = Fraction(total * w, sum(weights))
        assert exact - 1 < part < exact + 1 and part >= 0


def test_allocate_gives_the_leftover_fen_to_the_largest_remainders_first():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(10, [Fraction(1, 3), Fraction(2, 3)]) == [3, 7]
    assert allocate(7, [5, 0, 5]) == [4, 0, 3]
    assert allocate(-7, [1, 1]) == [-4, -3]
    with pytest.raises(ValueError):
        allocate(5, [0, 0])


RULES = [Rule("platform", "platform:revenue", basis_points=500),
         Rule("venue", "partner:2:payable", basis_points=1000, fixed_per_ticket=100),
         Rule("provider_fee", "provider_fees:wechat", basis_points=60),
         Rule("organiser", "partner:1:payable")]


@given(amount=st.integers(1, 10**9), tickets=st.integers(0, 10))
def test_shares_sum_to_the_amount_and_the_organiser_takes_the_rest(amount, tickets):
    split = shares(amount, tickets, RULES, "undistributed")
    assert sum(a for _, a in split) == amount and all(a >= 0 for _, a in split)
    by_part = {rule.part: a for rule, a in split}
    fixed = 100 * tickets
    if amount * 1560 / 10_000 + fixed <= amount:
        assert abs(by_part["venue"] - (amount * 1000 / 10_000 + fixed)) < 1
        assert abs(by_part["platform"] - amount * 500 / 10_000) < 1
    else:  # the agreed parts ask for more than was paid: scaled down, nothing left over
        assert by_part["organiser"] == 0


def test_without_an_organiser_rule_the_rest_is_undistributed():
    split = shares(10_000, 1, RULES[:3], "undistributed")
    assert [(r.account, a) for r, a in split][-1] == ("undistributed", 10_000 - 500 - 1100 - 60)


@given(amount=st.integers(1, 10**7), tickets=st.integers(0, 4),
       cuts=st.lists(st.integers(1, 10**7), max_size=6))
def test_refunds_give_back_exactly_the_split_and_never_more_than_a_part_got(amount, tickets,
                                                                            cuts):
    paid = [a for _, a in shares(amount, tickets, RULES, "undistributed")]
    back = [0] * len(paid)
    refunded = 0
    for cut in [*cuts, amount]:  # partial refunds, then whatever is left
        step = min(cut, amount - refunded)
        if step == 0:
            continue
        taken = reversal(paid, refunded, step)
        assert sum(taken) == step
        refunded += step
        back = [b + t for b, t in zip(back, taken, strict=True)]
        assert all(0 <= b <= p for b, p in zip(back, paid, strict=True))
    assert back == paid
