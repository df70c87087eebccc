"""The journal: accounts, and entries of postings that sum to zero, written in the caller's
transaction (the business event's own) and keyed by that event, so a retried event posts
nothing twice.

A posting's amount is a debit when positive and a credit when negative. Assets and expenses
are debit-normal, liabilities and revenue credit-normal: an account's balance "on its normal
side" is the sum of its postings, negated for a credit-normal account.

A *guarded* account must never go below zero on its normal side (a partner's payable, a
prepaid balance): it keeps its posted ``balance`` and its pending outflows (``held``) in its
row, changed by a conditional UPDATE here, in account id order, so two transactions taking
from it at once queue on the row and the second is refused when the first took too much (and
the table's CHECK is the backstop). Any other account has no balance row to contend on: its
balance is the sum of its postings.

An entry is ``posted`` at once or ``pending`` (money not yet final: a payout scheduled): a
pending entry holds its outflows from guarded accounts and counts in no balance until
:func:`post_pending`; :func:`void` lets it go. Nothing else ever changes an entry or a
posting (the database's triggers refuse it): a correction is :func:`reverse`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.core.audit import SYSTEM
from cloud.core.db import UtcDateTime
from cloud.ledger.errors import LedgerError
from cloud.ledger.tables import DEBIT_NORMAL, ledger_accounts, ledger_entries, ledger_postings


@dataclass(frozen=True)
class Leg:
    """One posting of an entry: ``account`` by code, ``amount`` a debit (> 0) or a credit
    (< 0) in the account's minor unit, ``part`` what it is (a split's part, ``clearing``…)."""

    account: str
    amount: int
    part: str


@dataclass(frozen=True)
class Facts:
    """What the business event was, kept on the entry for reports and reconciliation."""

    order_id: int | None = None
    payment_id: int | None = None
    refund_id: int | None = None
    provider: str | None = None
    reference: str | None = None
    session_id: int | None = None
    event_id: int | None = None
    channel: str | None = None
    memo: str = ""


@dataclass(frozen=True)
class Posted:
    entry_id: int
    replayed: bool  # the event had posted already: nothing was written now


@dataclass(frozen=True)
class Account:
    id: int
    code: str
    kind: str
    currency: str
    guarded: bool

    @property
    def sign(self) -> int:
        """+1 for a debit-normal account, -1 for a credit-normal one."""
        return 1 if self.kind in DEBIT_NORMAL else -1


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _insert(conn: sa.Connection, table: sa.Table):
    return (postgresql.insert(table) if conn.dialect.name == "postgresql"
            else sqlite.insert(table))


def open_account(conn: sa.Connection, code: str, name: str, kind: str, *,
                 currency: str = "CNY", guarded: bool = False, partner_id: int | None = None,
                 now: datetime | None = None) -> Account:
    """The account ``code``, opened now if it does not exist (two openers at once: one row)."""
    conn.execute(_insert(conn, ledger_accounts).values(
        code=code, name=name, kind=kind, currency=currency, guarded=guarded,
        partner_id=partner_id, created_at=_now(now)).on_conflict_do_nothing(
        index_elements=["code"]))
    return accounts(conn, [code])[code]


def accounts(conn: sa.Connection, codes: Iterable[str]) -> dict[str, Account]:
    """The accounts of ``codes``; an unknown code is refused."""
    wanted = set(codes)
    rows = conn.execute(sa.select(
        ledger_accounts.c.id, ledger_accounts.c.code, ledger_accounts.c.kind,
        ledger_accounts.c.currency, ledger_accounts.c.guarded)
        .where(ledger_accounts.c.code.in_(wanted))).all()
    found = {r.code: Account(r.id, r.code, r.kind, r.currency, r.guarded) for r in rows}
    for code in sorted(wanted - set(found)):
        raise LedgerError("unknown_account", account=code)
    return found


# one statement text, made once: the guard runs in every posting to a guarded account
_GUARD = sa.text("UPDATE ledger_accounts SET balance = balance + :delta, held = held + :hold "
                 "WHERE id = :id AND balance + :delta - (held + :hold) >= 0 "
                 "AND held + :hold >= 0")


def _guard(conn: sa.Connection, account: Account, balance_delta: int, held_delta: int) -> None:
    """Move a guarded account's balance and held amounts, refused (nothing moved) when what
    is left available would fall below zero."""
    moved = conn.execute(_GUARD, {"id": account.id, "delta": balance_delta,
                                  "hold": held_delta}).rowcount
    if moved != 1:
        _refuse(conn, account, balance_delta - held_delta)


def _refuse(conn: sa.Connection, account: Account, delta: int) -> None:
    """``insufficient_funds``: ``account`` could not give ``-delta`` (on its normal side)."""
    t = ledger_accounts
    row = conn.execute(sa.select(t.c.balance, t.c.held).where(t.c.id == account.id)).one()
    raise LedgerError("insufficient_funds", account=account.code,
                      available=row.balance - row.held, wanted=-delta)


def _by_account(legs: Sequence[Leg], known: dict[str, Account]) -> list[tuple[Account, int]]:
    """Each guarded account's net change on its normal side, in account id order."""
    net: dict[str, int] = {}
    for leg in legs:
        if known[leg.account].guarded:
            net[leg.account] = net.get(leg.account, 0) + leg.amount * known[leg.account].sign
    return sorted(((known[code], delta) for code, delta in net.items() if delta),
                  key=lambda pair: pair[0].id)


# PostgreSQL writes an entry in one statement: its accounts read, the entry inserted (unless
# its key is known: a replay), its postings inserted and — when it touches one guarded account,
# as a sale or a prepaid order does — that account's conditional UPDATE, so a posting costs
# one round trip. The entry is written only when every account exists and all share one
# currency; what is missing is said after, from the rows. An entry touching several guarded
# accounts has them moved after, one by one in id order (no deadlock between two such entries).
_PG_POST = sa.text("""
WITH acc AS (
  SELECT id, code, kind, currency, guarded FROM ledger_accounts
  WHERE code = ANY(CAST(:codes AS varchar[]))
), e AS (
  INSERT INTO ledger_entries (key, kind, state, currency, amount, memo, order_id, payment_id,
    refund_id, provider, reference, session_id, event_id, channel, reverses, actor,
    created_at, posted_at)
  SELECT :key, :kind, :state, min(currency), :amount, :memo, :order_id, :payment_id,
    :refund_id, :provider, :reference, :session_id, :event_id, :channel, :reverses, :actor,
    :created_at, :posted_at FROM acc
  HAVING count(*) = :accounts AND count(DISTINCT currency) = 1
  ON CONFLICT (key) DO NOTHING RETURNING id
), p AS (
  INSERT INTO ledger_postings (entry_id, account_id, amount, part)
  SELECT e.id, acc.id, v.amount, v.part
  FROM e CROSS JOIN unnest(CAST(:leg_codes AS varchar[]), CAST(:amounts AS bigint[]),
                           CAST(:parts AS varchar[])) WITH ORDINALITY AS v(code, amount, part, n)
  JOIN acc ON acc.code = v.code ORDER BY v.n
  RETURNING 1
), d AS (
  SELECT acc.id, sum(v.amount) * CASE WHEN acc.kind IN ('asset', 'expense') THEN 1 ELSE -1 END
         AS delta
  FROM unnest(CAST(:leg_codes AS varchar[]), CAST(:amounts AS bigint[])) AS v(code, amount)
  JOIN acc ON acc.code = v.code WHERE acc.guarded GROUP BY acc.id, acc.kind
), m AS (
  SELECT id, CASE WHEN CAST(:pending AS boolean) THEN 0 ELSE delta END AS moved,
         CASE WHEN CAST(:pending AS boolean) AND delta < 0 THEN -delta ELSE 0 END AS hold
  FROM d WHERE delta <> 0 AND NOT (CAST(:pending AS boolean) AND delta > 0)
), g AS (
  UPDATE ledger_accounts a SET balance = a.balance + m.moved, held = a.held + m.hold
  FROM m WHERE a.id = m.id AND (SELECT count(*) FROM m) = 1 AND EXISTS (SELECT 1 FROM e)
    AND a.balance + m.moved - (a.held + m.hold) >= 0
  RETURNING a.id
)
SELECT (SELECT id FROM e) AS entry_id, (SELECT count(*) FROM p) AS postings,
       (SELECT count(*) FROM m) AS guards, (SELECT count(*) FROM g) AS moved, acc.* FROM acc
""").columns(created_at=UtcDateTime(), posted_at=UtcDateTime())


def _checked(key: str, legs: Sequence[Leg]) -> None:
    """What an entry must be before any account is read."""
    if not key or len(key) > 120:
        raise LedgerError("malformed_entry", key=key[:120],
                          detail="the key is 1 to 120 characters")
    if len(legs) < 2:
        raise LedgerError("malformed_entry", key=key, detail="an entry has two postings or more")
    for leg in legs:
        if isinstance(leg.amount, bool) or not isinstance(leg.amount, int) or leg.amount == 0:
            raise LedgerError("malformed_entry", key=key,
                              detail=f"{leg.account}: an amount is a whole non-zero number")
    total = sum(leg.amount for leg in legs)
    if total:
        raise LedgerError("unbalanced_entry", key=key, total=total)


def _values(key: str, kind: str, legs: Sequence[Leg], facts: Facts, pending: bool, actor: str,
            now: datetime, reverses: int | None) -> dict:
    return dict(
        key=key, kind=kind, state="pending" if pending else "posted",
        amount=sum(leg.amount for leg in legs if leg.amount > 0), memo=facts.memo[:200],
        order_id=facts.order_id, payment_id=facts.payment_id, refund_id=facts.refund_id,
        provider=facts.provider, reference=facts.reference, session_id=facts.session_id,
        event_id=facts.event_id, channel=facts.channel, actor=actor, created_at=now,
        reverses=reverses, posted_at=None if pending else now)


def _insert_pg(conn: sa.Connection, values: dict,
               legs: Sequence[Leg]) -> tuple[int | None, dict[str, Account], bool]:
    codes = sorted({leg.account for leg in legs})
    rows = conn.execute(_PG_POST, {
        **values, "codes": codes, "accounts": len(codes), "pending": values["state"] == "pending",
        "leg_codes": [leg.account for leg in legs], "amounts": [leg.amount for leg in legs],
        "parts": [leg.part for leg in legs]}).all()
    known = {r.code: Account(r.id, r.code, r.kind, r.currency, r.guarded) for r in rows}
    for code in codes:
        if code not in known:
            raise LedgerError("unknown_account", account=code)
    entry_id = rows[0].entry_id if rows else None
    if entry_id is not None and rows[0].guards == 1 and rows[0].moved != 1:
        account, delta = _by_account(legs, known)[0]
        _refuse(conn, account, delta)
    return entry_id, known, rows[0].guards <= 1


def _insert_any(conn: sa.Connection, values: dict,
                legs: Sequence[Leg]) -> tuple[int | None, dict[str, Account]]:
    known = accounts(conn, {leg.account for leg in legs})
    currencies = {a.currency for a in known.values()}
    if len(currencies) != 1:
        return None, known, False  # said by the caller
    entry_id = conn.execute(_insert(conn, ledger_entries).values(
        **values, currency=currencies.pop()).on_conflict_do_nothing(index_elements=["key"])
        .returning(ledger_entries.c.id)).scalar()
    if entry_id is not None:
        conn.execute(sa.insert(ledger_postings).values([
            {"entry_id": entry_id, "account_id": known[leg.account].id, "amount": leg.amount,
             "part": leg.part} for leg in legs]))
    return entry_id, known, False


def post(conn: sa.Connection, key: str, kind: str, legs: Sequence[Leg], *,
         facts: Facts = Facts(), pending: bool = False, actor: str = SYSTEM,
         now: datetime | None = None, reverses: int | None = None) -> Posted:
    """Write the entry of the event ``key``: its postings must sum to zero. An event already
    posted writes nothing (``replayed``). A guarded account the entry would take below zero
    refuses it (``insufficient_funds``: the caller's transaction is rolled back by the
    raise). ``pending``: the entry holds its outflows until :func:`post_pending` or
    :func:`void`."""
    _checked(key, legs)
    values = _values(key, kind, legs, facts, pending, actor, _now(now), reverses)
    insert = _insert_pg if conn.dialect.name == "postgresql" else _insert_any
    entry_id, known, guarded = insert(conn, values, legs)
    if len({a.currency for a in known.values()}) != 1:
        raise LedgerError("malformed_entry", key=key,
                          detail="its accounts have different currencies")
    if entry_id is None:
        return Posted(entry_of(conn, key).id, replayed=True)
    for account, delta in [] if guarded else _by_account(legs, known):
        if pending:
            if delta < 0:
                _guard(conn, account, 0, -delta)
        else:
            _guard(conn, account, delta, 0)
    return Posted(entry_id, replayed=False)


def entry_of(conn: sa.Connection, key: str):
    row = conn.execute(sa.select(ledger_entries).where(ledger_entries.c.key == key)).first()
    if row is None:
        raise LedgerError("unknown_entry", key=key)
    return row


def legs_of(conn: sa.Connection, entry_id: int) -> list[Leg]:
    """An entry's postings, as legs, in the order they were written."""
    rows = conn.execute(
        sa.select(ledger_accounts.c.code, ledger_postings.c.amount, ledger_postings.c.part)
        .join(ledger_accounts, ledger_accounts.c.id == ledger_postings.c.account_id)
        .where(ledger_postings.c.entry_id == entry_id).order_by(ledger_postings.c.id))
    return [Leg(r.code, r.amount, r.part) for r in rows]


def _resolve(conn: sa.Connection, key: str, state: str, now: datetime | None) -> bool:
    entry = entry_of(conn, key)
    if entry.state == state:
        return False  # resolved so already: a retry changes nothing
    if entry.state != "pending":
        raise LedgerError("entry_not_pending", key=key, state=entry.state)
    values = {"state": state, ("posted_at" if state == "posted" else "voided_at"): _now(now)}
    moved = conn.execute(sa.update(ledger_entries).where(
        ledger_entries.c.id == entry.id, ledger_entries.c.state == "pending")
        .values(**values)).rowcount
    if moved != 1:  # another transaction resolved it first
        raise LedgerError("entry_not_pending", key=key, state=entry_of(conn, key).state)
    legs = legs_of(conn, entry.id)
    known = accounts(conn, {leg.account for leg in legs})
    for account, delta in _by_account(legs, known):
        held = -delta if delta < 0 else 0
        _guard(conn, account, delta if state == "posted" else 0, -held)
    return True


def post_pending(conn: sa.Connection, key: str, now: datetime | None = None) -> bool:
    """Post a pending entry: its postings count from now. False if it was posted already."""
    return _resolve(conn, key, "posted", now)


def void(conn: sa.Connection, key: str, now: datetime | None = None) -> bool:
    """Void a pending entry: what it held is free again. False if it was voided already."""
    return _resolve(conn, key, "voided", now)


def reverse(conn: sa.Connection, key: str, reversal_key: str, *, memo: str = "",
            actor: str = SYSTEM, now: datetime | None = None) -> Posted:
    """Correct a posted entry by a new one with every posting negated."""
    entry = entry_of(conn, key)
    if entry.state != "posted":
        raise LedgerError("entry_not_pending", key=key, state=entry.state)
    legs = [Leg(leg.account, -leg.amount, leg.part) for leg in legs_of(conn, entry.id)]
    return post(conn, reversal_key, "reversal", legs, reverses=entry.id, facts=Facts(
        order_id=entry.order_id, payment_id=entry.payment_id, refund_id=entry.refund_id,
        provider=entry.provider, reference=entry.reference, session_id=entry.session_id,
        event_id=entry.event_id, channel=entry.channel, memo=memo or f"reverses {key}"),
        actor=actor, now=now)


def balance(conn: sa.Connection, code: str, until: datetime | None = None) -> int:
    """An account's posted balance on its normal side (up to ``until`` when given)."""
    account = accounts(conn, [code])[code]
    q = (sa.select(sa.func.coalesce(sa.func.sum(ledger_postings.c.amount), 0))
         .join(ledger_entries, ledger_entries.c.id == ledger_postings.c.entry_id)
         .where(ledger_postings.c.account_id == account.id, ledger_entries.c.state == "posted"))
    if until is not None:
        q = q.where(ledger_entries.c.posted_at < until)
    return int(conn.execute(q).scalar()) * account.sign


def available(conn: sa.Connection, code: str) -> int:
    """What a guarded account can still give: its balance less what pending entries hold."""
    row = conn.execute(sa.select(ledger_accounts.c.balance, ledger_accounts.c.held)
                       .where(ledger_accounts.c.code == code)).first()
    if row is None:
        raise LedgerError("unknown_account", account=code)
    return row.balance - row.held


def trial_balance(conn: sa.Connection) -> dict[str, int]:
    """The sum of every posted posting, per currency: zero in every currency, always."""
    rows = conn.execute(
        sa.select(ledger_entries.c.currency, sa.func.sum(ledger_postings.c.amount))
        .join(ledger_entries, ledger_entries.c.id == ledger_postings.c.entry_id)
        .where(ledger_entries.c.state == "posted").group_by(ledger_entries.c.currency))
    return {currency: int(total) for currency, total in rows}
