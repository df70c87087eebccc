"""What the finance pages and the partner portal read of the journal: accounts with their
balances, an account's history, entries with their postings, and a partner's own accounts
and transactions. Reads only; every query that serves the portal takes the partner's id and
names only that partner's accounts (the portal's scope is this module's promise).

Lists are pages of at most ``limit`` rows, newest first, continued ``before`` an id (a cursor
that does not move when new rows arrive).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from cloud.ledger.tables import (
    DEBIT_NORMAL,
    ledger_accounts,
    ledger_entries,
    ledger_postings,
    partners,
)
from cloud.sales.tables import orders

PAGE = 50

_a, _e, _p = ledger_accounts, ledger_entries, ledger_postings


def _sign(kind: str) -> int:
    return 1 if kind in DEBIT_NORMAL else -1


def _posted_sums(account_ids: Iterable[int] | None = None):
    """Each account's sum of posted postings (debits positive)."""
    q = (sa.select(_p.c.account_id, sa.func.sum(_p.c.amount).label("total"))
         .join(_e, _e.c.id == _p.c.entry_id).where(_e.c.state == "posted")
         .group_by(_p.c.account_id))
    if account_ids is not None:
        q = q.where(_p.c.account_id.in_(list(account_ids)))
    return q


def _with_balances(conn: sa.Connection, rows: list) -> list[dict]:
    sums = dict(conn.execute(_posted_sums([r.id for r in rows])).all()) if rows else {}
    return [{**r._mapping, "balance": int(sums.get(r.id) or 0) * _sign(r.kind)} for r in rows]


def account_list(conn: sa.Connection) -> list[dict]:
    """Every account with its posted balance on its normal side and what pending entries
    hold of it, by kind then code."""
    rows = conn.execute(sa.select(
        _a.c.id, _a.c.code, _a.c.name, _a.c.kind, _a.c.currency, _a.c.guarded, _a.c.held,
        _a.c.partner_id).order_by(_a.c.kind, _a.c.code)).all()
    return _with_balances(conn, rows)


def account(conn: sa.Connection, account_id: int) -> dict | None:
    rows = conn.execute(sa.select(
        _a.c.id, _a.c.code, _a.c.name, _a.c.kind, _a.c.currency, _a.c.guarded, _a.c.held,
        _a.c.partner_id, _a.c.created_at).where(_a.c.id == account_id)).all()
    return _with_balances(conn, rows)[0] if rows else None


def _entry_columns():
    return (_e.c.id, _e.c.key, _e.c.kind, _e.c.state, _e.c.currency, _e.c.amount, _e.c.memo,
            _e.c.order_id, orders.c.number.label("order_number"), _e.c.provider,
            _e.c.reference, _e.c.channel, _e.c.event_id, _e.c.session_id, _e.c.reverses,
            _e.c.actor, _e.c.created_at, _e.c.posted_at, _e.c.voided_at)


def account_history(conn: sa.Connection, account_id: int, *, before: int | None = None,
                    limit: int = PAGE) -> list:
    """The account's postings with their entries, newest entry first."""
    q = (sa.select(*_entry_columns(), _p.c.id.label("posting_id"),
                   _p.c.amount.label("posting"), _p.c.part)
         .select_from(_p.join(_e, _e.c.id == _p.c.entry_id)
                      .outerjoin(orders, orders.c.id == _e.c.order_id))
         .where(_p.c.account_id == account_id))
    if before is not None:
        q = q.where(_e.c.id < before)
    return conn.execute(q.order_by(_e.c.id.desc(), _p.c.id).limit(limit)).all()


def entry_list(conn: sa.Connection, *, kind: str | None = None, state: str | None = None,
               before: int | None = None, limit: int = PAGE) -> list:
    q = sa.select(*_entry_columns()).select_from(
        _e.outerjoin(orders, orders.c.id == _e.c.order_id))
    if kind:
        q = q.where(_e.c.kind == kind)
    if state:
        q = q.where(_e.c.state == state)
    if before is not None:
        q = q.where(_e.c.id < before)
    return conn.execute(q.order_by(_e.c.id.desc()).limit(limit)).all()


def entry_kinds(conn: sa.Connection) -> list[str]:
    return list(conn.execute(sa.select(_e.c.kind).distinct().order_by(_e.c.kind)).scalars())


def entry(conn: sa.Connection, entry_id: int):
    return conn.execute(sa.select(*_entry_columns()).select_from(
        _e.outerjoin(orders, orders.c.id == _e.c.order_id))
        .where(_e.c.id == entry_id)).first()


def postings_of(conn: sa.Connection, entry_ids: Iterable[int],
                account_ids: Iterable[int] | None = None) -> dict[int, list]:
    """The postings of these entries with their accounts, by entry, in the order written;
    only those on ``account_ids`` when given."""
    ids = list(entry_ids)
    if not ids:
        return {}
    q = (sa.select(_p.c.entry_id, _p.c.id, _p.c.amount, _p.c.part, _a.c.id.label("account_id"),
                   _a.c.code, _a.c.name, _a.c.kind, _a.c.partner_id)
         .join(_a, _a.c.id == _p.c.account_id).where(_p.c.entry_id.in_(ids)))
    if account_ids is not None:
        q = q.where(_p.c.account_id.in_(list(account_ids)))
    found: dict[int, list] = {i: [] for i in ids}
    for row in conn.execute(q.order_by(_p.c.id)):
        found[row.entry_id].append(row)
    return found


# -- a partner's own ----------------------------------------------------------------------------


def partner_row(conn: sa.Connection, partner_id: int):
    return conn.execute(sa.select(partners).where(partners.c.id == partner_id)).first()


def partner_accounts(conn: sa.Connection, partner_id: int) -> list[dict]:
    """The partner's accounts (its payable, its receivable), with their balances."""
    rows = conn.execute(sa.select(
        _a.c.id, _a.c.code, _a.c.name, _a.c.kind, _a.c.currency, _a.c.guarded, _a.c.held,
        _a.c.partner_id).where(_a.c.partner_id == partner_id).order_by(_a.c.code)).all()
    return _with_balances(conn, rows)


def partner_transactions(conn: sa.Connection, partner_id: int, *, before: int | None = None,
                         limit: int = PAGE) -> list[dict]:
    """The entries that moved the partner's accounts, newest first: each with the partner's
    own postings (``mine``: amount on the account's normal side, and the part) and the
    entry's split among the parts (``split``: part and amount, the other partners'
    accounts not named; the buyer's side, the provider's clearing, left out)."""
    mine_ids = [r.id for r in conn.execute(
        sa.select(_a.c.id).where(_a.c.partner_id == partner_id))]
    if not mine_ids:
        return []
    touched = (sa.select(_p.c.entry_id).where(_p.c.account_id.in_(mine_ids)).distinct()
               .scalar_subquery())
    q = (sa.select(*_entry_columns()).select_from(
        _e.outerjoin(orders, orders.c.id == _e.c.order_id)).where(_e.c.id.in_(touched)))
    if before is not None:
        q = q.where(_e.c.id < before)
    entries = conn.execute(q.order_by(_e.c.id.desc()).limit(limit)).all()
    legs = postings_of(conn, [e.id for e in entries])
    out = []
    for e in entries:
        mine = [{"part": p.part, "code": p.code, "amount": p.amount * _sign(p.kind)}
                for p in legs[e.id] if p.account_id in mine_ids]
        split: dict[str, int] = {}
        for p in legs[e.id]:  # what each part was given (a refund: given back, negative)
            if p.part != "clearing":
                split[p.part] = split.get(p.part, 0) - p.amount
        out.append({**e._mapping, "mine": mine, "split": split})
    return out
