"""Partners' prepaid (备用金) and credit (授信) accounts, kept in the ledger (docs/ledger.md).

- A **top-up** (:func:`top_up`): money a partner paid the hub's bank, entered by staff: bank
  debited, the partner's prepaid balance credited, keyed ``topup:<reference>`` so a retry (or
  the same bank reference typed twice) posts once.
- A **credit limit** (:func:`set_credit_limit`): the change of the limit moves the credit
  granted and the unused credit by the difference; a lower limit is refused when the unused
  credit does not cover the cut (the partner owes more than the new limit would allow).
- An **order paid from the accounts** (:func:`charge_order`): one entry
  ``account:order:<order id>`` — the prepaid balance first, the rest from the unused credit,
  against the sale's split. Both accounts are guarded, so the conditional UPDATE in the posting
  transaction decides under concurrent orders, never a read: a charge whose prepaid part a
  concurrent order took is tried once more with what is left, then refused (``not_covered``).
- A **refund** (:func:`refund_to_account`): the split reversed in proportion, the money back to
  the unused credit first (up to what the order used of it), then to the prepaid balance.
- A **repayment** of credit (:func:`repay_credit`): bank debited, the unused credit raised; the
  monthly **statement** of credit (:func:`credit_statement`) lists what was charged to credit
  and repaid.
- The **warning**: when an order takes the prepaid balance to or below the partner's threshold
  (``partner_profiles.warn_below``; zero: never warned) and the partner was not warned since
  the balance last rose above it, one message to the partner's contact through the outbox.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.channels.partner_terms import contact_context
from cloud.channels.tables import partner_profiles
from cloud.core.audit import SYSTEM, record
from cloud.core.errors import Code, HubError
from cloud.core.outbox import enqueue
from cloud.core.seal import keyring_for
from cloud.ledger import chart
from cloud.ledger.errors import LedgerError
from cloud.ledger.journal import Facts, Leg, available, balance, post
from cloud.ledger.posting import (
    account_key,
    account_order_totals,
    post_account_payment,
    post_account_refund,
)
from cloud.ledger.tables import ledger_accounts, ledger_entries, ledger_postings, partners
from cloud.sales.orders import topup_partner
from cloud.sales.tables import orders
from sync.timeutil import CHINA

log = logging.getLogger(__name__)

MAX_AMOUNT = 10**12  # ten billion yuan: a typing slip, not a top-up
_REFERENCE = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_REFUND_KEY = re.compile(r"[A-Za-z0-9._:/,-]{1,2000}")
WARNING_KIND = "account_balance_low"


class AccountsError(HubError):
    """A change to a partner's prepaid or credit account that the rules refuse."""

    codes = {
        "not_covered": Code(409, "the partner's balance and credit cover %(available)s: "
                                 "%(wanted)s was wanted"),
        "credit_in_use": Code(409, "the unused credit is %(unused)s: the limit cannot be cut "
                                   "by %(cut)s"),
        "bad_account_request": Code(422, "%(field)s is missing or not valid"),
        "topup_reference_used": Code(409, "the reference %(reference)s was entered for "
                                          "another top-up"),
        "repayment_exceeds_debt": Code(409, "the partner owes %(owed)s on credit: %(amount)s "
                                            "cannot be repaid"),
        "account_refund_exceeds": Code(409, "order %(order_id)s has %(left)s left to refund "
                                            "to the account: %(amount)s was asked"),
        "no_account_charge": Code(404, "order %(order_id)s was not paid from the accounts of "
                                       "partner %(partner_id)s"),
    }


def _bad(field: str) -> AccountsError:
    return AccountsError("bad_account_request", field=field)


def _amount(value, field: str = "amount", zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value > MAX_AMOUNT \
            or value < 0 or (value == 0 and not zero):
        raise _bad(field)
    return value


def _reference(value) -> str:
    if not isinstance(value, str) or not _REFERENCE.fullmatch(value):
        raise _bad("reference")
    return value


def _partner(conn: sa.Connection, partner_id) -> sa.Row:
    if isinstance(partner_id, bool) or not isinstance(partner_id, int):
        raise _bad("partner_id")
    row = conn.execute(sa.select(partners.c.id, partners.c.name, partners.c.state)
                       .where(partners.c.id == partner_id)).first()
    if row is None:
        raise LedgerError("unknown_partner", partner_id=partner_id)
    return row


def _open_accounts(conn: sa.Connection, partner_id: int, now: datetime,
                   currency: str = "CNY") -> None:
    chart.ensure_all(conn, [chart.prepaid(partner_id), chart.credit_line(partner_id),
                            chart.credit_granted(partner_id), chart.BANK], currency, now)


def _insert(conn: sa.Connection, table: sa.Table):
    return (postgresql.insert(table) if conn.dialect.name == "postgresql"
            else sqlite.insert(table))


def _profile(conn: sa.Connection, partner_id: int, actor: str, now: datetime, **values) -> None:
    """Set profile columns, making the partner's profile row when it has none."""
    conn.execute(_insert(conn, partner_profiles).values(
        partner_id=partner_id, updated_by=actor, updated_at=now, **values)
        .on_conflict_do_update(index_elements=["partner_id"],
                               set_={"updated_by": actor, "updated_at": now, **values}))


# -- balances -----------------------------------------------------------------------------

def balances(conn: sa.Connection, partner_id: int) -> dict:
    """The partner's prepaid balance, credit limit and unused credit (what it can still
    order on credit), and the balance it is warned at (all in fen)."""
    _partner(conn, partner_id)
    row = conn.execute(sa.select(partner_profiles.c.warn_below, partner_profiles.c.warned_at)
                       .where(partner_profiles.c.partner_id == partner_id)).first()
    known = set(conn.execute(sa.select(ledger_accounts.c.code).where(
        ledger_accounts.c.partner_id == partner_id)).scalars())

    def guarded(code: str) -> int:
        return available(conn, code) if code in known else 0

    granted = chart.credit_granted(partner_id)
    return {"prepaid": guarded(chart.prepaid(partner_id)),
            "credit_limit": balance(conn, granted) if granted in known else 0,
            "credit_available": guarded(chart.credit_line(partner_id)),
            "warn_below": row.warn_below if row else 0,
            "warned_at": row.warned_at if row else None}


# -- top-ups, limits, thresholds, repayments -----------------------------------------------

def top_up(conn: sa.Connection, partner_id: int, amount: int, currency: str, reference: str,
           actor: str, now: datetime) -> dict:
    """Money the partner paid into the hub's bank (``reference``: the bank's), on its prepaid
    balance. A retry with the same reference posts nothing more; the reference entered for
    another partner or amount is refused."""
    _partner(conn, partner_id)
    amount, reference = _amount(amount), _reference(reference)
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise _bad("currency")
    key = f"topup:{reference}"
    _open_accounts(conn, partner_id, now, currency)
    prepaid = chart.prepaid(partner_id)
    posted = post(conn, key, "topup", [Leg(chart.BANK, amount, "bank"),
                                       Leg(prepaid, -amount, "prepaid")],
                  facts=_facts(reference, f"top-up of partner {partner_id}"),
                  actor=actor, now=now)
    if posted.replayed:
        _same_event(conn, key, prepaid, -amount, reference)
        return {"entry_id": posted.entry_id, "replayed": True, **balances(conn, partner_id)}
    record(conn, actor, "account.topup", f"partner:{partner_id}", None,
           {"amount": amount, "currency": currency, "reference": reference})
    _rose(conn, partner_id)
    return {"entry_id": posted.entry_id, "replayed": False, **balances(conn, partner_id)}


def _facts(reference: str, memo: str) -> Facts:
    return Facts(reference=reference[:64], memo=memo)


def _same_event(conn: sa.Connection, key: str, account: str, amount: int,
                reference: str) -> None:
    """A replayed key must be the same event: the same amount to the same account."""
    same = conn.execute(
        sa.select(sa.func.count()).select_from(ledger_postings)
        .join(ledger_entries, ledger_entries.c.id == ledger_postings.c.entry_id)
        .join(ledger_accounts, ledger_accounts.c.id == ledger_postings.c.account_id)
        .where(ledger_entries.c.key == key, ledger_accounts.c.code == account,
               ledger_postings.c.amount == amount)).scalar()
    if not same:
        raise AccountsError("topup_reference_used", reference=reference)


def set_credit_limit(conn: sa.Connection, partner_id: int, limit: int, actor: str,
                     now: datetime) -> dict:
    """Grant credit up to ``limit`` (fen; 0: none): the credit granted and the unused credit
    move by the difference. A cut is refused when the unused credit does not cover it."""
    _partner(conn, partner_id)
    limit = _amount(limit, "limit", zero=True)
    _open_accounts(conn, partner_id, now)
    _profile(conn, partner_id, actor, now, credit_limit=limit)  # the row lock queues a racer
    before = balances(conn, partner_id)["credit_limit"]
    diff = limit - before
    if diff:
        granted, line = chart.credit_granted(partner_id), chart.credit_line(partner_id)
        try:
            with conn.begin_nested():
                post(conn, f"credit_limit:{partner_id}:{uuid.uuid4().hex}", "credit_limit",
                     [Leg(granted, diff, "limit"), Leg(line, -diff, "limit")],
                     facts=_facts(f"partner:{partner_id}", f"credit limit {limit}"),
                     actor=actor, now=now)
        except LedgerError as e:
            if e.code != "insufficient_funds":
                raise
            raise AccountsError("credit_in_use", unused=e.params["available"],
                                cut=-diff) from None
    record(conn, actor, "account.credit_limit", f"partner:{partner_id}",
           {"credit_limit": before}, {"credit_limit": limit})
    return balances(conn, partner_id)


def set_warn_below(conn: sa.Connection, partner_id: int, warn_below: int, actor: str,
                   now: datetime) -> dict:
    """The prepaid balance at or below which the partner is warned (0: never). A threshold
    under the balance now lets the partner be warned again."""
    _partner(conn, partner_id)
    warn_below = _amount(warn_below, "warn_below", zero=True)
    before = balances(conn, partner_id)
    _profile(conn, partner_id, actor, now, warn_below=warn_below)
    record(conn, actor, "account.warn_below", f"partner:{partner_id}",
           {"warn_below": before["warn_below"]}, {"warn_below": warn_below})
    _rose(conn, partner_id)
    return balances(conn, partner_id)


def repay_credit(conn: sa.Connection, partner_id: int, amount: int, reference: str,
                 actor: str, now: datetime) -> dict:
    """Money the partner paid into the bank against what it owes on credit: its unused
    credit rises by it. Keyed ``repay:<reference>``; more than it owes is refused."""
    _partner(conn, partner_id)
    amount, reference = _amount(amount), _reference(reference)
    _open_accounts(conn, partner_id, now)
    now_ = balances(conn, partner_id)
    key, line = f"repay:{reference}", chart.credit_line(partner_id)
    if conn.execute(sa.select(ledger_entries.c.id).where(ledger_entries.c.key == key)).first():
        _same_event(conn, key, line, -amount, reference)
        return {"replayed": True, **now_}
    owed = now_["credit_limit"] - now_["credit_available"]
    if amount > owed:
        raise AccountsError("repayment_exceeds_debt", owed=owed, amount=amount)
    post(conn, key, "credit_repayment", [Leg(chart.BANK, amount, "bank"),
                                         Leg(line, -amount, "repayment")],
         facts=_facts(reference, f"credit repaid by partner {partner_id}"), actor=actor,
         now=now)
    record(conn, actor, "account.repay", f"partner:{partner_id}", None,
           {"amount": amount, "reference": reference})
    return {"replayed": False, **balances(conn, partner_id)}


# -- orders ---------------------------------------------------------------------------------

def _funding(conn: sa.Connection, partner_id: int, amount: int) -> list[Leg]:
    """The funding legs of a charge as the accounts stand now: prepaid first, then credit;
    ``not_covered`` when both together fall short."""
    prepaid, line = chart.prepaid(partner_id), chart.credit_line(partner_id)
    have_prepaid, have_credit = available(conn, prepaid), available(conn, line)
    if have_prepaid + have_credit < amount:
        raise AccountsError("not_covered", available=have_prepaid + have_credit,
                            wanted=amount)
    from_prepaid = min(have_prepaid, amount)
    legs = [Leg(prepaid, from_prepaid, "prepaid")] if from_prepaid else []
    if amount - from_prepaid:
        legs.append(Leg(line, amount - from_prepaid, "credit"))
    return legs


def charge_order(conn: sa.Connection, *, partner_id: int, order_id: int, amount: int,
                 currency: str, now: datetime, actor: str) -> dict:
    """Pay order ``order_id`` from the partner's accounts: one entry, the prepaid balance
    first and the rest from the unused credit. A charge whose funding a concurrent order took
    first is tried once more with what is then left; refused ``not_covered`` (nothing posted)
    when balance and credit together do not cover it. Charging an order again posts
    nothing."""
    _partner(conn, partner_id)
    amount = _amount(amount)
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise _bad("currency")
    _open_accounts(conn, partner_id, now, currency)
    done = account_order_totals(conn, order_id)
    if done is not None:
        return {"replayed": True, "charged": done[0], **balances(conn, partner_id)}
    for attempt in (1, 2):
        legs = _funding(conn, partner_id, amount)
        try:
            with conn.begin_nested():
                posted = post_account_payment(conn, order_id, legs, now, actor)
            break
        except LedgerError as e:
            if e.code != "insufficient_funds":
                raise
            if attempt == 2:
                _funding(conn, partner_id, amount)  # refuses with what is left now
                raise AccountsError("not_covered", available=e.params["available"],
                                    wanted=amount) from None
    taken = {leg.part: leg.amount for leg in legs}
    _warn_if_low(conn, partner_id, now)
    return {"replayed": posted.replayed, "entry_id": posted.entry_id,
            "from_prepaid": taken.get("prepaid", 0), "from_credit": taken.get("credit", 0),
            **balances(conn, partner_id)}


def refund_to_account(conn: sa.Connection, *, partner_id: int, order_id: int,
                      refund_key: str, amount: int, now: datetime, actor: str) -> dict:
    """Give ``amount`` of an order paid from the partner's accounts back to them: the split
    reversed in proportion, the unused credit refilled first up to what the order used of it,
    then the prepaid balance. Keyed ``account:refund:<refund_key>`` (a retry posts once)."""
    _partner(conn, partner_id)
    amount = _amount(amount)
    if not isinstance(refund_key, str) or not _REFUND_KEY.fullmatch(refund_key):
        raise _bad("refund_key")
    funded = conn.execute(
        sa.select(sa.func.count()).select_from(ledger_postings)
        .join(ledger_entries, ledger_entries.c.id == ledger_postings.c.entry_id)
        .join(ledger_accounts, ledger_accounts.c.id == ledger_postings.c.account_id)
        .where(ledger_entries.c.key == account_key(order_id),
               ledger_accounts.c.partner_id == partner_id,
               ledger_accounts.c.code.in_([chart.prepaid(partner_id),
                                           chart.credit_line(partner_id)]))).scalar()
    if not funded:
        raise AccountsError("no_account_charge", order_id=order_id, partner_id=partner_id)
    # a long key (a refund of many tickets names them all) is kept by its digest
    key = "account:refund:" + (refund_key if len(refund_key) <= 100 else
                               hashlib.sha256(refund_key.encode()).hexdigest())
    if conn.execute(sa.select(ledger_entries.c.id).where(ledger_entries.c.key == key)).first():
        return {"replayed": True, **balances(conn, partner_id)}
    charged, back = account_order_totals(conn, order_id)
    if amount > charged - back:
        raise AccountsError("account_refund_exceeds", order_id=order_id,
                            left=charged - back, amount=amount)
    posted = post_account_refund(conn, order_id, key, amount, now, actor)
    _rose(conn, partner_id)
    return {"replayed": posted.replayed, "entry_id": posted.entry_id,
            **balances(conn, partner_id)}


# -- the warning ----------------------------------------------------------------------------

def topped_up_online(conn: sa.Connection, payload: dict, now: datetime) -> None:
    """The worker's handler of a top-up paid online (:data:`TOPUP_PAID_JOB`, written by the
    payments area with the capture that credited the balance): audited on the partner's
    account, and the warning re-armed when the balance is above its threshold again."""
    o = conn.execute(sa.select(orders.c.buyer, orders.c.total, orders.c.currency,
                               orders.c.payment_reference)
                     .where(orders.c.id == payload["order_id"])).one()
    partner_id = topup_partner(o.buyer)
    record(conn, SYSTEM, "account.topup_online", f"partner:{partner_id}", None,
           {"amount": o.total, "currency": o.currency, "order_id": payload["order_id"],
            "reference": o.payment_reference})
    _rose(conn, partner_id)


def _rose(conn: sa.Connection, partner_id: int) -> None:
    """The prepaid balance is above the threshold again: the next fall warns again."""
    code = chart.prepaid(partner_id)
    have = conn.execute(sa.select(ledger_accounts.c.balance - ledger_accounts.c.held)
                        .where(ledger_accounts.c.code == code)).scalar() or 0
    conn.execute(sa.update(partner_profiles).where(
        partner_profiles.c.partner_id == partner_id, partner_profiles.c.warned_at.is_not(None),
        partner_profiles.c.warn_below < have).values(warned_at=None))


def contact_address(conn: sa.Connection, partner_id: int, sealed: str | None
                    ) -> tuple[str, str] | None:
    """The channel and address a partner's contact is reached at (e-mail first, else a
    mobile number), from its sealed contact; None when it has neither."""
    if not sealed:
        return None
    text = keyring_for(conn).open(sealed, contact_context(partner_id))
    try:
        contact = json.loads(text)
    except ValueError:
        contact = {"email" if "@" in text else "phone": text}
    if not isinstance(contact, dict):
        return None
    if contact.get("email"):
        return "email", str(contact["email"])
    phone = contact.get("phone") or contact.get("mobile")
    return ("sms", str(phone)) if phone else None


def _warn_if_low(conn: sa.Connection, partner_id: int, now: datetime) -> bool:
    """After an order: warn the partner once when its prepaid balance is at or below its
    threshold (the conditional UPDATE of ``warned_at`` lets one of racing orders do it)."""
    have = available(conn, chart.prepaid(partner_id))
    row = conn.execute(sa.update(partner_profiles).where(
        partner_profiles.c.partner_id == partner_id, partner_profiles.c.warned_at.is_(None),
        partner_profiles.c.warn_below > 0, partner_profiles.c.warn_below >= have)
        .values(warned_at=now).returning(partner_profiles.c.sealed_contact,
                                         partner_profiles.c.warn_below)).first()
    if row is None:
        return False
    name = conn.execute(sa.select(partners.c.name).where(partners.c.id == partner_id)).scalar()
    address = contact_address(conn, partner_id, row.sealed_contact)
    if address is None:
        log.warning("partner %s is at its balance threshold and has no contact to warn",
                    partner_id)
        return True
    channel, to = address
    enqueue(conn, kind=WARNING_KIND, channel=channel, to=to, params={
        "partner": name, "balance": _yuan(have), "threshold": _yuan(row.warn_below)},
        dedupe_key=f"{WARNING_KIND}:{partner_id}:{int(now.timestamp())}", now=now)
    return True


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


# -- the credit statement -------------------------------------------------------------------

def _month(month: str) -> tuple[datetime, datetime]:
    if not isinstance(month, str) or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise _bad("month")
    start = datetime(int(month[:4]), int(month[5:]), 1, tzinfo=CHINA)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def _owed(conn: sa.Connection, partner_id: int, until: datetime) -> int:
    known = set(conn.execute(sa.select(ledger_accounts.c.code).where(
        ledger_accounts.c.partner_id == partner_id)).scalars())
    granted, line = chart.credit_granted(partner_id), chart.credit_line(partner_id)
    if granted not in known:
        return 0
    return balance(conn, granted, until) - balance(conn, line, until)


def credit_statement(conn: sa.Connection, partner_id: int, month: str) -> dict:
    """A month (China time, ``YYYY-MM``) of the partner's credit: what it owed at the start,
    each order charged to credit, refunded to it and each repayment, and what it owed at the
    end (changes of the limit are not lines: they change no debt)."""
    _partner(conn, partner_id)
    start, end = _month(month)
    t, p, a = ledger_entries, ledger_postings, ledger_accounts
    rows = conn.execute(
        sa.select(t.c.posted_at, t.c.kind, t.c.order_id, t.c.reference, p.c.amount, p.c.part)
        .join(p, p.c.entry_id == t.c.id).join(a, a.c.id == p.c.account_id)
        .where(a.c.code == chart.credit_line(partner_id), t.c.state == "posted",
               p.c.part != "limit", t.c.posted_at >= start, t.c.posted_at < end)
        .order_by(t.c.posted_at, t.c.id)).all()
    lines = [{"at": r.posted_at,
              "kind": ("repayment" if r.part == "repayment"
                       else "charge" if r.amount > 0 else "refund"),
              "order_id": r.order_id, "reference": r.reference,
              "charged": 0 if r.part == "repayment" else r.amount,
              "repaid": -r.amount if r.part == "repayment" else 0} for r in rows]
    return {"month": month, "opening": _owed(conn, partner_id, start), "lines": lines,
            "charged": sum(x["charged"] for x in lines),
            "repaid": sum(x["repaid"] for x in lines),
            "closing": _owed(conn, partner_id, end)}


def recent_entries(conn: sa.Connection, partner_id: int, limit: int = 50) -> list[dict]:
    """The latest postings to the partner's prepaid and credit accounts, newest first."""
    t, p, a = ledger_entries, ledger_postings, ledger_accounts
    rows = conn.execute(
        sa.select(t.c.posted_at, t.c.kind, t.c.order_id, t.c.reference, a.c.code, p.c.amount)
        .join(p, p.c.entry_id == t.c.id).join(a, a.c.id == p.c.account_id)
        .where(a.c.code.in_([chart.prepaid(partner_id), chart.credit_line(partner_id)]),
               t.c.state == "posted")
        .order_by(t.c.id.desc(), p.c.id).limit(limit)).all()
    return [{"at": r.posted_at, "kind": r.kind, "order_id": r.order_id,
             "reference": r.reference,
             "account": "prepaid" if r.code.endswith(":prepaid") else "credit",
             "amount": -r.amount} for r in rows]
