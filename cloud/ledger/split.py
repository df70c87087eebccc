"""Splitting an amount among parties, a pure function: never a fen created or lost.

:func:`allocate` is the largest-remainder method: each party gets the whole part of its exact
share, and the fen left over go one each to the largest fractional remainders (ties to the
party listed first). :func:`shares` turns the rules that apply to a payment into each part's
exact share — percentages of the amount and fixed amounts per ticket; the organiser takes
the rest — and allocates the amount by them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

RESIDUAL = "organiser"  # the part that takes what the other parts leave


def allocate(total: int, weights: Sequence[Fraction | int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (none negative, not all zero): whole
    numbers that sum to ``total`` exactly, each within one of its exact share."""
    if total < 0:
        return [-x for x in allocate(-total, weights)]
    weight = sum(weights, Fraction(0))
    if weight <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights are not negative and not all zero")
    exact = [Fraction(total) * w / weight for w in weights]
    whole = [int(x) for x in exact]  # floor: every exact share is >= 0
    left = total - sum(whole)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - whole[i]), i))
    for i in order[:left]:
        whole[i] += 1
    return whole


@dataclass(frozen=True)
class Rule:
    """One part's agreed terms for a payment: ``basis_points`` of the amount (1 = 0.01 %) and
    ``fixed_per_ticket`` minor units for each ticket; ``account`` gets it."""

    part: str
    account: str
    basis_points: int = 0
    fixed_per_ticket: int = 0


def shares(amount: int, tickets: int, rules: Sequence[Rule],
           residual_account: str) -> list[tuple[Rule, int]]:
    """Each rule's share of ``amount`` (whole minor units) and the residual's (the organiser's
    rule when one is among ``rules``, else ``residual_account``), summing to ``amount``.
    Parts whose exact shares exceed the amount are scaled down to it, the rest then nothing."""
    others = [r for r in rules if r.part != RESIDUAL]
    organiser = next((r for r in rules if r.part == RESIDUAL),
                     Rule(RESIDUAL, residual_account))
    exact = [Fraction(amount * r.basis_points, 10_000) + r.fixed_per_ticket * tickets
             for r in others]
    taken = sum(exact, Fraction(0))
    if amount <= 0:
        return [(r, 0) for r in [*others, organiser]]
    if taken > amount:
        split = allocate(amount, exact)
        return [*zip(others, split, strict=True), (organiser, 0)]
    split = allocate(amount, [*exact, amount - taken])
    return list(zip([*others, organiser], split, strict=True))


def reversal(shares_paid: Sequence[int], refunded_before: int, refunding: int) -> list[int]:
    """What a refund of ``refunding`` takes back from each share of a payment split into
    ``shares_paid``, after refunds of ``refunded_before`` already: the difference of the
    cumulative allocations, so that the refunds of a whole payment give back exactly its
    shares and no share ever gives back more than it got."""
    if not any(shares_paid):
        raise ValueError("a payment of nothing is not refunded")
    weights = [abs(s) for s in shares_paid]
    after = allocate(refunded_before + refunding, weights)
    before = allocate(refunded_before, weights)
    return [a - b for a, b in zip(after, before, strict=True)]
