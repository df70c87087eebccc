"""Settlement: what the hub owes each partner, stated and paid out on the partner's cycle.

A run settles as of a moment (``as_of``): for each active partner, one statement of the
postings to its payable account that are *due* and in no statement yet. A posting is due when
its entry was posted before ``as_of - settle_days`` (the partner's T+N), and a refund's
posting also when the payment it refunds was: the money given back waits with the sale it
belongs to, so a refund made inside the window is set against that sale's statement and
never asks for more than the payable holds. Payouts themselves are no line of any
statement. A statement's net is never below zero: refunds of sales paid out already, more
than the partner's due sales, wait (unsettled) for the later sales they were taken from.

A statement's net (its sales less its refunds) is scheduled as a pending payout entry
``payout:<statement id>`` (the payable debited, the bank credited), which holds the money on
the guarded payable until finance marks the statement paid (:func:`mark_paid`: someone else
than who prepared it; the payout posts) or cancels it (:func:`cancel_statement`: the payout
is voided and the lines are free for a later run).

The lines are chosen and written by one INSERT … SELECT per partner, the totals by one
aggregate: a million sales are settled in SQL, never a Python loop per posting. Each posting
is in at most one statement (``settlement_items``' primary key); each partner is settled in
its own transaction, so a run that stopped is finished by :func:`resume_run`, which settles
only the partners it had not reached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.core.audit import record
from cloud.ledger import chart
from cloud.ledger.errors import LedgerError
from cloud.ledger.journal import Facts, Leg, post, post_pending, void
from cloud.ledger.partners import partner
from cloud.ledger.tables import (
    ledger_accounts,
    ledger_entries,
    ledger_postings,
    partners,
    settlement_items,
    settlement_runs,
    settlement_statements,
)
from cloud.sales.tables import orders
from sync.timeutil import CHINA

log = logging.getLogger(__name__)

FEE_PARTS = ("platform", "provider_fee")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Line:
    """One entry of a statement: ``gross`` what went through the provider's clearing
    account (a refund's is negative), ``share`` the partner's part of it (a refund's is
    negative), ``fees`` the platform's and the provider's parts."""

    entry_id: int
    posted_at: datetime
    key: str
    kind: str
    order_number: str | None
    reference: str | None
    gross: int
    share: int
    fees: int


# runs

def start_run(conn: sa.Connection, as_of: datetime, actor: str, now: datetime) -> int:
    """A new settlement run as of ``as_of`` (not after ``now``); its id."""
    if not isinstance(as_of, datetime) or as_of.tzinfo is None or as_of > now:
        raise LedgerError("bad_ledger_request", field="as_of")
    run_id = conn.execute(sa.insert(settlement_runs).values(
        as_of=as_of, state="running", started_by=actor, started_at=now)).inserted_primary_key[0]
    record(conn, actor, "settlement.start", f"settlement_run:{run_id}", None,
           {"as_of": as_of.isoformat()})
    return run_id


def _run(conn: sa.Connection, run_id: int):
    row = conn.execute(sa.select(settlement_runs)
                       .where(settlement_runs.c.id == run_id)).first()
    if row is None:
        raise LedgerError("bad_ledger_request", field="run_id")
    return row


def runs(conn: sa.Connection) -> list[sa.Row]:
    """Every run, newest first, with its statements' count and net total."""
    s = settlement_statements
    totals = (sa.select(s.c.run_id, sa.func.count().label("statements"),
                        sa.func.coalesce(sa.func.sum(s.c.net), 0).label("net"))
              .where(s.c.state != "cancelled").group_by(s.c.run_id).subquery())
    return list(conn.execute(
        sa.select(settlement_runs, sa.func.coalesce(totals.c.statements, 0).label("statements"),
                  sa.func.coalesce(totals.c.net, 0).label("net"))
        .outerjoin(totals, totals.c.run_id == settlement_runs.c.id)
        .order_by(settlement_runs.c.id.desc())))


def _to_settle(conn: sa.Connection, run_id: int) -> list[int]:
    """The active partners the run has no statement for yet, in id order."""
    done = sa.select(settlement_statements.c.partner_id).where(
        settlement_statements.c.run_id == run_id)
    return list(conn.execute(sa.select(partners.c.id).where(
        partners.c.state == "active", partners.c.id.not_in(done))
        .order_by(partners.c.id)).scalars())


def resume_run(engine: sa.Engine, run_id: int, now: datetime,
               progress: Progress | None = None) -> int:
    """Settle every partner the run has not reached yet, each in its own transaction, then
    mark the run done; its id. Running it again settles nothing twice."""
    with engine.begin() as conn:
        if _run(conn, run_id).state == "done":
            return run_id
        todo = _to_settle(conn, run_id)
    for done, partner_id in enumerate(todo, start=1):
        with engine.begin() as conn:
            settle_partner(conn, run_id, partner_id, now)
        if progress is not None:
            progress(done, len(todo))
    with engine.begin() as conn:
        conn.execute(sa.update(settlement_runs).where(settlement_runs.c.id == run_id)
                     .values(state="done", finished_at=now))
    log.info("settlement run %s done: %s partners settled", run_id, len(todo))
    return run_id


def run_settlement(engine: sa.Engine, as_of: datetime, actor: str, now: datetime,
                   progress: Progress | None = None) -> int:
    """A whole settlement run as of ``as_of``: a statement for each active partner with
    lines due; the run's id. ``progress(done, total)`` after each partner."""
    with engine.begin() as conn:
        run_id = start_run(conn, as_of, actor, now)
    return resume_run(engine, run_id, now, progress)


SETTLE_AFTER = time(2, 0)  # China time: the day before is whole, its late notifications in
SETTLE_ACTOR = "system:settlement"  # who prepares the runs the worker makes (finance pays)


def daily_settlement(engine: sa.Engine, now: datetime) -> int:
    """The worker's periodic task (apart: it gets the engine): once a China day, after
    :data:`SETTLE_AFTER`, a run as of that day's start (each partner up to its T+N); a run of
    the day that stopped is finished. How many runs it made or finished (0 or 1)."""
    local = now.astimezone(CHINA)
    if local.time() < SETTLE_AFTER:
        return 0
    as_of = datetime.combine(local.date(), time(0), CHINA)
    with engine.connect() as conn:
        run = conn.execute(sa.select(settlement_runs.c.id, settlement_runs.c.state)
                           .where(settlement_runs.c.as_of == as_of)
                           .order_by(settlement_runs.c.id).limit(1)).first()
    if run is None:
        run_settlement(engine, as_of, SETTLE_ACTOR, now)
        return 1
    if run.state != "done":
        resume_run(engine, run.id, now)
        return 1
    return 0


# one partner's statement

def _due(account_id: int, cutoff: datetime) -> sa.Select:
    """The ids of the account's postings due by ``cutoff`` (those in a statement already
    are passed over by the insert: ``ON CONFLICT DO NOTHING`` on settlement_items' key)."""
    p, e = ledger_postings, ledger_entries
    paid = e.alias("paid")
    payment_due = sa.exists().where(paid.c.payment_id == e.c.payment_id,
                                    paid.c.kind == "payment", paid.c.state == "posted",
                                    paid.c.posted_at < cutoff)
    return (sa.select(p.c.id).join(e, e.c.id == p.c.entry_id)
            .where(p.c.account_id == account_id, e.c.state == "posted", e.c.kind != "payout",
                   sa.or_(e.c.posted_at < cutoff,
                          sa.and_(e.c.kind == "refund", e.c.payment_id.is_not(None),
                                  payment_due))))


def _lines_query(statement_id: int, account_id: int) -> sa.Select:
    """Per entry of the statement: the partner's share (its postings to the account: an
    entry's postings to one account are always settled together) and the entry's gross and
    fees."""
    p, q = ledger_postings, ledger_postings.alias("q")
    entries = (sa.select(p.c.entry_id).distinct()
               .join(settlement_items, settlement_items.c.posting_id == p.c.id)
               .where(settlement_items.c.statement_id == statement_id).subquery("entries"))
    share = -sa.func.sum(sa.case((q.c.account_id == account_id, q.c.amount), else_=0))
    gross = sa.func.sum(sa.case((q.c.part == "clearing", q.c.amount), else_=0))
    fees = -sa.func.sum(sa.case((q.c.part.in_(FEE_PARTS), q.c.amount), else_=0))
    return (sa.select(entries.c.entry_id, share.label("share"), gross.label("gross"),
                      fees.label("fees"))
            .join(q, q.c.entry_id == entries.c.entry_id)
            .group_by(entries.c.entry_id))


def _totals(conn: sa.Connection, statement_id: int, account_id: int) -> dict[str, int]:
    lines = _lines_query(statement_id, account_id).subquery()
    row = conn.execute(sa.select(
        sa.func.count().label("lines"),
        sa.func.coalesce(sa.func.sum(lines.c.gross), 0).label("gross"),
        sa.func.coalesce(sa.func.sum(sa.case((lines.c.share > 0, lines.c.share), else_=0)),
                         0).label("sales"),
        sa.func.coalesce(sa.func.sum(sa.case((lines.c.share < 0, -lines.c.share), else_=0)),
                         0).label("refunds"),
        sa.func.coalesce(sa.func.sum(lines.c.fees), 0).label("fees"))).one()
    totals = {k: int(v) for k, v in row._mapping.items()}
    totals["net"] = totals["sales"] - totals["refunds"]
    return totals


def _lock_payable(conn: sa.Connection, partner_id: int) -> sa.Row | None:
    """The partner's payable account, its row locked: one settlement of it at a time."""
    return conn.execute(sa.select(ledger_accounts.c.id, ledger_accounts.c.currency)
                        .where(ledger_accounts.c.code == chart.payable(partner_id))
                        .with_for_update()).first()


def settle_partner(conn: sa.Connection, run_id: int, partner_id: int,
                   now: datetime) -> int | None:
    """The partner's statement in the run (written now if the run has none yet), or None
    when nothing of the partner's is due. The net, when above zero, is a pending payout."""
    run = _run(conn, run_id)
    who = partner(conn, partner_id)
    payable = _lock_payable(conn, partner_id)
    s = settlement_statements
    existing = conn.execute(sa.select(s.c.id).where(s.c.run_id == run_id,
                                                    s.c.partner_id == partner_id)).scalar()
    if existing is not None or payable is None:
        return existing
    if conn.dialect.name == "postgresql":  # compiling these short queries costs more than
        conn.exec_driver_sql("SET LOCAL jit = off")  # it saves: 10-20 ms each
    cutoff = run.as_of - timedelta(days=who.settle_days)
    statement_id = conn.execute(sa.insert(s).values(
        run_id=run_id, partner_id=partner_id, account_id=payable.id,
        currency=payable.currency, period_until=cutoff, lines=0, gross=0, sales=0,
        refunds=0, fees=0, net=0, state="prepared", prepared_by=run.started_by,
        prepared_at=now)).inserted_primary_key[0]
    due = _due(payable.id, cutoff).add_columns(sa.literal(statement_id))
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)
    conn.execute(insert(settlement_items).from_select(
        ["posting_id", "statement_id"], due).on_conflict_do_nothing())
    # counted, not taken from the rowcount: psycopg reports -1 for an INSERT … SELECT
    totals = _totals(conn, statement_id, payable.id)
    if not totals["lines"] or totals["net"] < 0:
        # nothing due, or refunds that wait for the later sales they are set against
        conn.execute(sa.delete(settlement_items)
                     .where(settlement_items.c.statement_id == statement_id))
        conn.execute(sa.delete(s).where(s.c.id == statement_id))
        return None
    payout = None
    if totals["net"] > 0:
        payout = post(conn, f"payout:{statement_id}", "payout",
                      [Leg(chart.payable(partner_id), totals["net"], "payout"),
                       Leg(chart.ensure(conn, chart.BANK, payable.currency, now),
                           -totals["net"], "bank")],
                      facts=Facts(memo=f"settlement {run_id}: {who.code}"), pending=True,
                      actor=run.started_by, now=now).entry_id
    conn.execute(sa.update(s).where(s.c.id == statement_id).values(
        **totals, payout_entry_id=payout))
    return statement_id


# statements

def _with_partner() -> sa.Select:
    s = settlement_statements
    return (sa.select(s, partners.c.code.label("partner_code"),
                      partners.c.name.label("partner_name"),
                      settlement_runs.c.as_of.label("as_of"))
            .join(partners, partners.c.id == s.c.partner_id)
            .join(settlement_runs, settlement_runs.c.id == s.c.run_id))


def statements(conn: sa.Connection, *, partner_id: int | None = None,
               run_id: int | None = None) -> list[sa.Row]:
    """Statements, newest first, with their partner's code and name and their run's as_of."""
    s = settlement_statements
    q = _with_partner().order_by(s.c.id.desc())
    if partner_id is not None:
        q = q.where(s.c.partner_id == partner_id)
    if run_id is not None:
        q = q.where(s.c.run_id == run_id)
    return list(conn.execute(q))


def statement(conn: sa.Connection, statement_id: int) -> sa.Row:
    row = conn.execute(_with_partner().where(
        settlement_statements.c.id == statement_id)).first()
    if row is None:
        raise LedgerError("unknown_statement", statement_id=statement_id)
    return row


def statement_lines(conn: sa.Connection, statement_id: int) -> list[Line]:
    """The statement's entries in the order they were posted (a cancelled statement has
    none left: its lines were freed)."""
    account_id = statement(conn, statement_id).account_id
    lines = _lines_query(statement_id, account_id).subquery()
    e = ledger_entries
    rows = conn.execute(
        sa.select(lines, e.c.posted_at, e.c.key, e.c.kind, e.c.reference,
                  orders.c.number.label("order_number"))
        .join(e, e.c.id == lines.c.entry_id)
        .outerjoin(orders, orders.c.id == e.c.order_id)
        .order_by(e.c.posted_at, e.c.id))
    return [Line(r.entry_id, r.posted_at, r.key, r.kind, r.order_number, r.reference,
                 int(r.gross), int(r.share), int(r.fees)) for r in rows]


def _prepared(conn: sa.Connection, statement_id: int) -> sa.Row:
    row = statement(conn, statement_id)
    if row.state != "prepared":
        raise LedgerError("statement_state", statement_id=statement_id, state=row.state)
    return row


def _move(conn: sa.Connection, statement_id: int, state: str, **values) -> None:
    """prepared → ``state``, refused if another transaction moved it first."""
    s = settlement_statements
    moved = conn.execute(sa.update(s).where(s.c.id == statement_id, s.c.state == "prepared")
                         .values(state=state, **values)).rowcount
    if moved != 1:
        raise LedgerError("statement_state", statement_id=statement_id,
                          state=statement(conn, statement_id).state)


def mark_paid(conn: sa.Connection, statement_id: int, reference: str, actor: str,
              now: datetime) -> None:
    """The statement's money has gone to the partner (the bank's ``reference``): its payout
    posts. Only someone other than who prepared the statement marks it (maker ≠ checker)."""
    row = _prepared(conn, statement_id)
    if row.prepared_by == actor:
        raise LedgerError("same_person", actor=actor)
    if not isinstance(reference, str) or not reference.strip() or len(reference) > 64 \
            or not reference.isprintable():
        raise LedgerError("bad_ledger_request", field="reference")
    _move(conn, statement_id, "paid", paid_by=actor, paid_at=now,
          pay_reference=reference.strip())
    if row.payout_entry_id is not None:
        post_pending(conn, f"payout:{statement_id}", now)
    record(conn, actor, "settlement.paid", f"settlement_statement:{statement_id}",
           {"state": "prepared"}, {"state": "paid", "reference": reference.strip(),
                                   "net": row.net})


def cancel_statement(conn: sa.Connection, statement_id: int, actor: str,
                     now: datetime) -> None:
    """Withdraw a statement not paid yet: its payout is voided and its lines go back to
    being due, for a later run."""
    row = _prepared(conn, statement_id)
    _move(conn, statement_id, "cancelled")
    if row.payout_entry_id is not None:
        void(conn, f"payout:{statement_id}", now)
    conn.execute(sa.delete(settlement_items)
                 .where(settlement_items.c.statement_id == statement_id))
    record(conn, actor, "settlement.cancel", f"settlement_statement:{statement_id}",
           {"state": "prepared"}, {"state": "cancelled", "net": row.net})

