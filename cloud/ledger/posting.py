"""Every payment and refund, posted: called by the payments area in the transaction that
records the payment captured or the refund confirmed, keyed by it (a duplicate notification,
a retried job, posts nothing twice).

- A payment its order kept (:func:`post_payment`): the provider's clearing account is debited
  with what the buyer paid, and each part of the split (cloud/ledger/split.py, by the rules in
  force when it was paid: :func:`rules_for`) is credited to its account.
- A payment no order could keep (:func:`post_unplaced`): clearing against buyers' refunds
  payable, until it is refunded.
- A refund (:func:`post_refund`): reverses the split of what it refunds, part by part, in
  proportion (cumulatively, so a whole payment's refunds give back exactly its split); of a
  payment no order kept, it pays off the refunds payable. A partner's payable that has been
  paid out already gives back what it still holds, the rest becomes the partner's receivable.
- An order a partner pays from its accounts (:func:`post_account_payment`): the funding legs
  the channels area chose (its prepaid balance first, then its unused credit) debited, the
  split credited as for a payment (provider ``account``), in one entry keyed
  ``account:order:<order id>``; its refunds (:func:`post_account_refund`) reverse the split in
  proportion as :func:`post_refund` does, and give the money back to the unused credit first,
  up to what the order used of it, then to the prepaid balance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import sessions
from cloud.core.audit import SYSTEM
from cloud.ledger import chart
from cloud.ledger.journal import Facts, Leg, Posted, legs_of, post
from cloud.ledger.split import Rule, reversal, shares
from cloud.ledger.tables import ledger_accounts, ledger_entries, ledger_postings, split_rules
from cloud.sales.orders import topup_partner
from cloud.sales.tables import TOPUP, order_lines, orders

log = logging.getLogger(__name__)

PAYMENT, UNPLACED, REFUND = "payment", "unplaced", "refund"
ACCOUNT_PAYMENT, ACCOUNT_REFUND = "account_payment", "account_refund"
ACCOUNT = "account"  # the provider a partner's own accounts are to the split rules
# the parts of an account payment's funding legs: the prepaid balance, the unused credit
FUNDING_PARTS = ("prepaid", "credit")


@dataclass(frozen=True)
class Paid:
    """A payment as the ledger is told of it (whole minor units)."""

    payment_id: int
    order_id: int
    provider: str
    out_trade_no: str
    amount: int
    currency: str = "CNY"


@dataclass(frozen=True)
class Sale:
    """What the split of an order's payment depends on."""

    session_id: int | None
    event_id: int | None
    channel: str
    tickets: int
    products: frozenset[int]
    topup_of: int | None = None  # the partner whose prepaid balance the order tops up


def channel_of(order) -> str:
    """Where an order was sold: ``presale`` (a lottery application), ``topup`` (a partner's
    prepaid balance topped up online: no sale), the channel it was sold
    through as the channels name it (``sold_via``: web, box_office, kiosk, contract,
    distributor, agent), else ``web`` (a buyer's account on the public site) or
    ``box_office``."""
    if order.kind in ("presale", TOPUP):
        return order.kind
    if order.sold_via:
        return order.sold_via
    return "web" if (order.buyer or "").startswith("buyer:") else "box_office"


_ORDER = sa.select(orders.c.session_id, orders.c.buyer, orders.c.kind, orders.c.sold_via,
                   sessions.c.event_id).outerjoin(sessions, sessions.c.id == orders.c.session_id
                                                  ).where(orders.c.id == sa.bindparam("order_id"))
_LINE_PRODUCTS = sa.select(order_lines.c.product_id).where(
    order_lines.c.order_id == sa.bindparam("order_id"))


def sale_of(conn: sa.Connection, order_id: int) -> Sale:
    order = conn.execute(_ORDER, {"order_id": order_id}).one()
    lines = conn.execute(_LINE_PRODUCTS, {"order_id": order_id}).scalars().all()
    topup_of = topup_partner(order.buyer) if order.kind == TOPUP else None
    return Sale(order.session_id, order.event_id, channel_of(order), len(lines),
                frozenset(p for p in lines if p is not None), topup_of)


def _rules_statement() -> sa.Select:
    t = split_rules
    at = sa.bindparam("at", type_=t.c.effective_from.type)
    return sa.select(t).where(
        t.c.effective_from <= at, sa.or_(t.c.effective_until.is_(None), t.c.effective_until > at),
        sa.or_(t.c.event_id.is_(None), t.c.event_id == sa.bindparam("event_id")),
        sa.or_(t.c.product_id.is_(None),
               t.c.product_id.in_(sa.bindparam("products", expanding=True))),
        sa.or_(t.c.channel.is_(None), t.c.channel == sa.bindparam("channel")),
        sa.or_(t.c.provider.is_(None), t.c.provider == sa.bindparam("provider")))


_RULES = _rules_statement()


def rules_for(conn: sa.Connection, sale: Sale, provider: str, at: datetime) -> list[Rule]:
    """The rules in force at ``at`` for this sale: for each part, the most specific rule
    (event, then product, then channel, then provider; the latest agreed on a tie)."""
    rows = conn.execute(_RULES, {"at": at, "event_id": sale.event_id,
                                 "products": sorted(sale.products or {0}),
                                 "channel": sale.channel, "provider": provider}).all()
    best: dict[str, tuple] = {}
    for r in rows:
        rank = (8 * (r.event_id is not None) + 4 * (r.product_id is not None)
                + 2 * (r.channel is not None) + (r.provider is not None),
                r.effective_from, r.id)
        if r.part not in best or rank > best[r.part][0]:
            best[r.part] = (rank, r)
    out = []
    for part in sorted(best):
        r = best[part][1]
        account = (chart.PLATFORM_REVENUE if part == "platform"
                   else chart.provider_fees(provider) if part == "provider_fee"
                   else chart.payable(r.partner_id))
        out.append(Rule(part, account, r.basis_points, r.fixed_per_ticket))
    return out


def _facts(paid: Paid, sale: Sale | None, **more) -> Facts:
    return Facts(order_id=paid.order_id, payment_id=paid.payment_id, provider=paid.provider,
                 reference=paid.out_trade_no, session_id=sale.session_id if sale else None,
                 event_id=sale.event_id if sale else None,
                 channel=sale.channel if sale else None, **more)


def post_payment(conn: sa.Connection, paid: Paid, now: datetime,
                 actor: str = SYSTEM) -> Posted:
    """The entry of a payment its order kept: clearing debited, the split credited (a
    partner's online top-up: its prepaid balance credited whole, nothing split)."""
    sale = sale_of(conn, paid.order_id)
    legs = [Leg(chart.clearing(paid.provider), paid.amount, "clearing")]
    if sale.topup_of is not None:
        legs.append(Leg(chart.prepaid(sale.topup_of), -paid.amount, "prepaid"))
    else:
        split = shares(paid.amount, sale.tickets, rules_for(conn, sale, paid.provider, now),
                       chart.UNDISTRIBUTED)
        legs += [Leg(rule.account, -amount, rule.part) for rule, amount in split if amount]
    chart.ensure_all(conn, {leg.account for leg in legs}, paid.currency, now)
    return post(conn, f"payment:{paid.payment_id}", PAYMENT, legs, facts=_facts(paid, sale),
                actor=actor, now=now)


def post_unplaced(conn: sa.Connection, paid: Paid, reason: str, now: datetime) -> Posted:
    """The entry of a payment no order could keep: owed back to the buyer."""
    legs = [Leg(chart.clearing(paid.provider), paid.amount, "clearing"),
            Leg(chart.REFUNDS_PAYABLE, -paid.amount, "refunds_payable")]
    chart.ensure_all(conn, {leg.account for leg in legs}, paid.currency, now)
    return post(conn, f"payment:{paid.payment_id}", UNPLACED, legs,
                facts=_facts(paid, None, memo=f"not kept: {reason}"[:200]), now=now)


def _payment_entry(conn: sa.Connection, payment_id: int):
    return conn.execute(sa.select(ledger_entries).where(
        ledger_entries.c.key == f"payment:{payment_id}")).first()


def _refunded_before(conn: sa.Connection, payment_id: int) -> int:
    """What the payment's refunds posted so far took out of its clearing account."""
    return -int(conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(ledger_postings.c.amount), 0))
        .join(ledger_entries, ledger_entries.c.id == ledger_postings.c.entry_id)
        .where(ledger_entries.c.payment_id == payment_id, ledger_entries.c.kind == REFUND,
               ledger_postings.c.part == "clearing")).scalar())


def _spill(conn: sa.Connection, leg: Leg, currency: str, now: datetime) -> list[Leg]:
    """A debit to a partner's payable beyond what it holds: the rest to its receivable."""
    row = conn.execute(sa.select(ledger_accounts.c.balance, ledger_accounts.c.held)
                       .where(ledger_accounts.c.code == leg.account)
                       .with_for_update()).one()
    free = max(row.balance - row.held, 0)
    if leg.amount <= free:
        return [leg]
    partner_id = int(leg.account.split(":")[1])
    rest = Leg(chart.ensure(conn, chart.receivable(partner_id), currency, now),
               leg.amount - free, leg.part)
    return [Leg(leg.account, free, leg.part), rest] if free else [rest]


def post_refund(conn: sa.Connection, paid: Paid, refund_id: int, out_refund_no: str,
                amount: int, now: datetime) -> Posted:
    """The entry of a refund that succeeded: the payment's split reversed in proportion, or
    the refunds payable paid off for a payment no order kept."""
    entry = _payment_entry(conn, paid.payment_id)
    clearing = chart.clearing(paid.provider)  # open since the payment posted to it
    facts = Facts(order_id=paid.order_id, payment_id=paid.payment_id, refund_id=refund_id,
                  provider=paid.provider, reference=out_refund_no,
                  session_id=entry.session_id if entry else None,
                  event_id=entry.event_id if entry else None,
                  channel=entry.channel if entry else None)
    if entry is None or entry.kind == UNPLACED:
        if entry is None:
            log.error("refund %s of payment %s that the ledger never saw: to suspense",
                      refund_id, paid.payment_id)
        owed = chart.REFUNDS_PAYABLE if entry else chart.SUSPENSE
        chart.ensure_all(conn, {owed, clearing}, paid.currency, now)
        legs = [Leg(owed, amount, "refunds_payable"), Leg(clearing, -amount, "clearing")]
    else:
        parts = [leg for leg in legs_of(conn, entry.id) if leg.part != "clearing"]
        back = reversal([-leg.amount for leg in parts],
                        _refunded_before(conn, paid.payment_id), amount)
        legs = [Leg(clearing, -amount, "clearing")]
        for leg, taken in zip(parts, back, strict=True):
            if taken:
                debit = Leg(leg.account, taken, leg.part)
                legs += (_spill(conn, debit, paid.currency, now)
                         if leg.account.startswith("partner:") and taken > 0 else [debit])
    return post(conn, f"refund:{refund_id}", REFUND, legs, facts=facts, now=now)


def account_key(order_id: int) -> str:
    return f"account:order:{order_id}"


def post_funded(conn: sa.Connection, order_id: int, key: str, kind: str,
                funding_legs: list[Leg], provider: str, reference: str, now: datetime,
                actor: str = SYSTEM, memo: str = "") -> Posted:
    """The entry of an order paid otherwise than through a provider's notification:
    ``funding_legs`` (what paid it: debits) against the split of their sum by the rules in
    force for ``provider``; keyed ``key`` (a retry posts nothing)."""
    amount = sum(leg.amount for leg in funding_legs)
    sale = sale_of(conn, order_id)
    split = shares(amount, sale.tickets, rules_for(conn, sale, provider, now),
                   chart.UNDISTRIBUTED)
    legs = [*funding_legs, *(Leg(rule.account, -share, rule.part) for rule, share in split
                             if share)]
    currency = conn.execute(sa.select(ledger_accounts.c.currency).where(
        ledger_accounts.c.code == funding_legs[0].account)).scalar() or "CNY"
    chart.ensure_all(conn, {leg.account for leg in legs}, currency, now)
    return post(conn, key, kind, legs, facts=Facts(
        order_id=order_id, provider=provider, reference=reference,
        session_id=sale.session_id, event_id=sale.event_id, channel=sale.channel,
        memo=memo[:200]), actor=actor, now=now)


def post_account_payment(conn: sa.Connection, order_id: int, funding_legs: list[Leg],
                         now: datetime, actor: str = SYSTEM) -> Posted:
    """The entry of an order paid from a partner's accounts: ``funding_legs`` (debits of its
    prepaid balance, part ``prepaid``, and of its unused credit, part ``credit``) against
    the split of their sum by the rules in force for provider ``account``. The guarded
    accounts refuse (``insufficient_funds``) a leg that would take them below zero."""
    return post_funded(conn, order_id, account_key(order_id), ACCOUNT_PAYMENT, funding_legs,
                       ACCOUNT, f"order:{order_id}", now, actor)


def _account_refunds(conn: sa.Connection, order_id: int) -> list[Leg]:
    """Every posting of the order's account refunds so far."""
    entry_ids = conn.execute(sa.select(ledger_entries.c.id).where(
        ledger_entries.c.order_id == order_id, ledger_entries.c.kind == ACCOUNT_REFUND,
        ledger_entries.c.state == "posted")).scalars().all()
    return [leg for entry_id in entry_ids for leg in legs_of(conn, entry_id)]


def account_order_totals(conn: sa.Connection, order_id: int) -> tuple[int, int] | None:
    """What an order charged to a partner's accounts and what its refunds gave back so far;
    None when no account payment of it was posted."""
    entry = conn.execute(sa.select(ledger_entries.c.id, ledger_entries.c.amount).where(
        ledger_entries.c.key == account_key(order_id))).first()
    if entry is None:
        return None
    back = -sum(leg.amount for leg in _account_refunds(conn, order_id)
                if leg.part in FUNDING_PARTS)
    return entry.amount, back


def _funding_back(funding: list[Leg], returned: dict[str, int], amount: int) -> list[Leg]:
    """Credits giving ``amount`` back to the funding accounts: the unused credit first, up to
    what the order used of it less what earlier refunds gave it, then the prepaid balance."""
    out, left = [], amount
    for part in ("credit", "prepaid"):
        used = [leg for leg in funding if leg.part == part]
        give = min(sum(leg.amount for leg in used) - returned.get(part, 0), left)
        if give > 0:
            out.append(Leg(used[0].account, -give, part))
            left -= give
    if left:
        raise ValueError(f"{left} of the refund is more than the order's funding left")
    return out


def post_account_refund(conn: sa.Connection, order_id: int, key: str, amount: int,
                        now: datetime, actor: str = SYSTEM) -> Posted:
    """The entry of a refund of an order paid from a partner's accounts: its split reversed in
    proportion (cumulatively, as :func:`post_refund`), the money back to the funding accounts
    (:func:`_funding_back`). The caller checks that ``amount`` is not more than is left."""
    entry = conn.execute(sa.select(ledger_entries).where(
        ledger_entries.c.key == account_key(order_id))).one()
    legs_paid = legs_of(conn, entry.id)
    funding = [leg for leg in legs_paid if leg.part in FUNDING_PARTS]
    parts = [leg for leg in legs_paid if leg.part not in FUNDING_PARTS]
    earlier = _account_refunds(conn, order_id)
    returned: dict[str, int] = {}
    for leg in earlier:
        if leg.part in FUNDING_PARTS:
            returned[leg.part] = returned.get(leg.part, 0) - leg.amount
    back = reversal([-leg.amount for leg in parts], sum(returned.values()), amount)
    legs = _funding_back(funding, returned, amount)
    for leg, taken in zip(parts, back, strict=True):
        if taken:
            debit = Leg(leg.account, taken, leg.part)
            legs += (_spill(conn, debit, entry.currency, now)
                     if leg.account.startswith("partner:") and taken > 0 else [debit])
    return post(conn, key, ACCOUNT_REFUND, legs, facts=Facts(
        order_id=order_id, provider=ACCOUNT, reference=key[-64:], session_id=entry.session_id,
        event_id=entry.event_id, channel=entry.channel), actor=actor, now=now)
