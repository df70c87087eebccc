"""Reconciliation of a provider's daily statement with the ledger, line by line.

The ledger's side is its own entries, never the payments area's records: a payment is the entry
keyed ``payment:<id>`` (kind ``payment``, or ``unplaced`` when no order kept it) with the
provider and its ``out_trade_no`` as reference, for the amount of its clearing posting; a
refund is the entry of kind ``refund`` with its ``out_refund_no`` as reference. The day is the
provider's: China time (UTC+8). The ledger's side of a day is every such entry posted that day,
and any entry the statement names, whenever it was posted (a payment taken just before
midnight and posted just after it is still matched).

Each difference is one exception (``recon_exceptions``), of one kind:

- ``missing_in_ledger``: the provider took or gave back money the ledger never heard of (a
  notification that never came: a missing callback);
- ``missing_from_statement``: the ledger has money the provider does not list;
- ``amount_differs``: both list it, for different amounts;
- ``unknown_refund``: the provider lists a refund the hub never asked for;
- ``duplicate``: the statement lists the same payment or refund more than once.

Importing a day again adds no exception twice (the table's unique key); an exception is
resolved once, audited: accepted, followed up, or adjusted by a balanced entry between the
provider's clearing account and suspense (``adjustment:<exception id>``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.core.audit import record
from cloud.ledger import chart
from cloud.ledger.errors import LedgerError
from cloud.ledger.journal import Facts, Leg, post
from cloud.ledger.tables import ledger_entries, ledger_postings, recon_exceptions, recon_imports
from sync.timeutil import CHINA

PAYMENT_KINDS = ("payment", "unplaced")
REFUND_KIND = "refund"
ACTIONS = {"accept": "accepted", "adjust": "adjusted", "follow_up": "follow_up"}
OPEN_STATES = ("open", "follow_up")  # what may still be resolved
_CHUNK = 500  # references per IN (…) list


@dataclass(frozen=True)
class StatementLine:
    """One line of a provider's statement, in minor units: a ``payment`` or a ``refund``
    (which names its ``out_refund_no`` too)."""

    kind: str
    out_trade_no: str
    amount: int
    out_refund_no: str | None = None


@dataclass(frozen=True)
class Imported:
    import_id: int
    rows: int
    exceptions: list  # the exceptions this import raised (rows of recon_exceptions)


@dataclass(frozen=True)
class _Ours:
    amount: int
    out_trade_no: str


def day_window(day: date) -> tuple[datetime, datetime]:
    """The provider's day (China time) as a UTC interval ``[since, until)``."""
    since = datetime.combine(day, time(0), tzinfo=CHINA).astimezone(UTC)
    return since, since + timedelta(days=1)


def _key(line: StatementLine) -> tuple[str, str]:
    """Payments by trade number, refunds by refund number (unique at a provider)."""
    if line.kind == "refund":
        return ("refund", line.out_refund_no or "")
    return ("payment", line.out_trade_no)


def _check_lines(lines: Sequence[StatementLine]) -> None:
    for i, line in enumerate(lines):
        if line.kind not in ("payment", "refund") or not line.out_trade_no or \
                (line.kind == "refund" and not line.out_refund_no) or \
                isinstance(line.amount, bool) or not isinstance(line.amount, int) or \
                line.amount < 0:
            raise LedgerError("bad_ledger_request", field=f"lines.{i}")


def _entries(conn: sa.Connection, provider: str, where) -> list:
    e, p = ledger_entries, ledger_postings
    clearing = (sa.select(sa.func.coalesce(sa.func.sum(p.c.amount), 0))
                .where(p.c.entry_id == e.c.id, p.c.part == "clearing")
                .scalar_subquery())
    return conn.execute(sa.select(e.c.id, e.c.kind, e.c.reference, e.c.payment_id,
                                  clearing.label("clearing"))
                        .where(e.c.provider == provider, e.c.state == "posted",
                               e.c.kind.in_((*PAYMENT_KINDS, REFUND_KIND)), where)).all()


def _ledger_side(conn: sa.Connection, provider: str, day: date,
                 named: set[str]) -> dict[tuple[str, str], _Ours]:
    """The ledger's payments and refunds at ``provider``: posted on ``day`` or named."""
    since, until = day_window(day)
    rows = {r.id: r for r in _entries(conn, provider, sa.and_(
        ledger_entries.c.posted_at >= since, ledger_entries.c.posted_at < until))}
    names = sorted(named)
    for i in range(0, len(names), _CHUNK):
        rows.update((r.id, r) for r in _entries(
            conn, provider, ledger_entries.c.reference.in_(names[i:i + _CHUNK])))
    # a refund's trade number is its payment's reference
    trade_of = {r.payment_id: r.reference for r in rows.values() if r.kind in PAYMENT_KINDS}
    wanted = sorted({r.payment_id for r in rows.values()
                     if r.kind == REFUND_KIND and r.payment_id not in trade_of})
    for i in range(0, len(wanted), _CHUNK):
        trade_of.update(conn.execute(sa.select(ledger_entries.c.payment_id,
                                               ledger_entries.c.reference).where(
            ledger_entries.c.payment_id.in_(wanted[i:i + _CHUNK]),
            ledger_entries.c.kind.in_(PAYMENT_KINDS))).all())
    ours: dict[tuple[str, str], _Ours] = {}
    for r in rows.values():
        if r.kind == REFUND_KIND:
            ours[("refund", r.reference)] = _Ours(-int(r.clearing),
                                                  trade_of.get(r.payment_id) or "")
        else:
            ours[("payment", r.reference)] = _Ours(int(r.clearing), r.reference)
    return ours


def differences(ours: dict[tuple[str, str], _Ours], lines: Sequence[StatementLine],
                asked_refunds: Collection[str] = ()) -> list[dict]:
    """Each difference between the ledger's side and the statement's lines (pure)."""
    theirs: dict[tuple[str, str], list[StatementLine]] = {}
    for line in lines:
        theirs.setdefault(_key(line), []).append(line)
    found = []
    for key in sorted(set(theirs) | set(ours)):
        entry, number = key
        listed, hub = theirs.get(key, []), ours.get(key)
        out_trade_no = listed[0].out_trade_no if listed else hub.out_trade_no
        same = {"entry": entry, "out_trade_no": out_trade_no,
                "out_refund_no": number if entry == "refund" else "",
                "hub_amount": hub.amount if hub else None}
        if len(listed) > 1:
            found.append({**same, "kind": "duplicate",
                          "statement_amount": sum(line.amount for line in listed)})
        if not listed:
            found.append({**same, "kind": "missing_from_statement", "statement_amount": None})
        elif hub is None:
            kind = ("unknown_refund" if entry == "refund" and number not in asked_refunds
                    else "missing_in_ledger")
            found.append({**same, "kind": kind, "statement_amount": listed[0].amount})
        elif hub.amount != listed[0].amount:
            found.append({**same, "kind": "amount_differs",
                          "statement_amount": listed[0].amount})
    return found


def _insert(conn: sa.Connection, table: sa.Table):
    return (postgresql.insert(table) if conn.dialect.name == "postgresql"
            else sqlite.insert(table))


def reconcile(conn: sa.Connection, provider: str, day: date, lines: Sequence[StatementLine],
              actor: str, now: datetime, *,
              asked_refunds: Collection[str] = ()) -> Imported:
    """Import ``provider``'s statement of ``day`` and record each difference with the ledger
    as an exception (one already recorded for this day is not added again). A refund the
    ledger lacks is ``unknown_refund`` unless its number is in ``asked_refunds`` (refunds the
    hub asked for: the payments area knows them), which makes it ``missing_in_ledger``."""
    _check_lines(lines)
    named = {line.out_refund_no if line.kind == "refund" else line.out_trade_no
             for line in lines}
    found = differences(_ledger_side(conn, provider, day, named), lines, asked_refunds)
    import_id = conn.execute(sa.insert(recon_imports).values(
        provider=provider, day=day.isoformat(), rows=len(lines), exceptions=0,
        imported_by=actor, imported_at=now).returning(recon_imports.c.id)).scalar_one()
    new_ids = []
    for d in found:
        new_id = conn.execute(_insert(conn, recon_exceptions).values(
            import_id=import_id, provider=provider, day=day.isoformat(), created_at=now, **d)
            .on_conflict_do_nothing(index_elements=[
                "provider", "day", "kind", "entry", "out_trade_no", "out_refund_no"])
            .returning(recon_exceptions.c.id)).scalar()
        if new_id is not None:
            new_ids.append(new_id)
    conn.execute(sa.update(recon_imports).where(recon_imports.c.id == import_id)
                 .values(exceptions=len(new_ids)))
    record(conn, actor, "ledger.statement.import", f"{provider}:{day.isoformat()}",
           after={"import_id": import_id, "rows": len(lines), "exceptions": len(new_ids)})
    return Imported(import_id, len(lines), _rows(conn, new_ids))


def _rows(conn: sa.Connection, ids: Iterable[int]) -> list:
    ids = list(ids)
    if not ids:
        return []
    return conn.execute(sa.select(recon_exceptions).where(recon_exceptions.c.id.in_(ids))
                        .order_by(recon_exceptions.c.id)).all()


def exceptions(conn: sa.Connection, *, state: str | None = None,
               provider: str | None = None) -> list:
    """The exceptions, oldest first; only those in ``state`` / of ``provider`` when given."""
    q = sa.select(recon_exceptions).order_by(recon_exceptions.c.id)
    if state is not None:
        q = q.where(recon_exceptions.c.state == state)
    if provider is not None:
        q = q.where(recon_exceptions.c.provider == provider)
    return conn.execute(q).all()


def exception(conn: sa.Connection, exception_id: int):
    row = conn.execute(sa.select(recon_exceptions)
                       .where(recon_exceptions.c.id == exception_id)).first()
    if row is None:
        raise LedgerError("unknown_exception", exception_id=exception_id)
    return row


def imports(conn: sa.Connection, provider: str | None = None) -> list:
    """The statements imported, newest first."""
    q = sa.select(recon_imports).order_by(recon_imports.c.id.desc())
    if provider is not None:
        q = q.where(recon_imports.c.provider == provider)
    return conn.execute(q).all()


def difference(row) -> int:
    """What the statement says the provider's clearing account holds beyond what the ledger
    says, for this exception: payments count in, refunds out."""
    sign = 1 if row.entry == "payment" else -1
    return sign * ((row.statement_amount or 0) - (row.hub_amount or 0))


def _adjust(conn: sa.Connection, row, note: str, actor: str, now: datetime) -> int:
    diff = difference(row)
    if diff == 0:
        raise LedgerError("bad_ledger_request", field="action")
    clearing = chart.ensure(conn, chart.clearing(row.provider), now=now)
    suspense = chart.ensure(conn, chart.SUSPENSE, now=now)
    posted = post(conn, f"adjustment:{row.id}", "adjustment",
                  [Leg(clearing, diff, "clearing"), Leg(suspense, -diff, "suspense")],
                  facts=Facts(provider=row.provider,
                              reference=row.out_refund_no or row.out_trade_no,
                              memo=f"{row.kind} {row.day}: {note}"[:200]),
                  actor=actor, now=now)
    return posted.entry_id


def resolve(conn: sa.Connection, exception_id: int, action: str, note: str, actor: str,
            now: datetime):
    """Resolve an open (or followed-up) exception: ``accept`` it as it is, ``follow_up`` (it
    stays to be resolved later) or ``adjust`` the ledger by the difference; audited. The
    exception as it is now."""
    if action not in ACTIONS:
        raise LedgerError("bad_ledger_request", field="action")
    if not isinstance(note, str) or len(note) > 500:
        raise LedgerError("bad_ledger_request", field="note")
    t = recon_exceptions
    row = conn.execute(sa.select(t).where(t.c.id == exception_id).with_for_update()).first()
    if row is None:
        raise LedgerError("unknown_exception", exception_id=exception_id)
    state = ACTIONS[action]
    if row.state not in OPEN_STATES or row.state == state:
        raise LedgerError("exception_resolved", exception_id=exception_id, state=row.state)
    entry_id = _adjust(conn, row, note, actor, now) if action == "adjust" else None
    moved = conn.execute(sa.update(t).where(t.c.id == exception_id, t.c.state == row.state)
                         .values(state=state, note=note, resolved_by=actor, resolved_at=now,
                                 adjustment_entry_id=entry_id)).rowcount
    if moved != 1:  # another transaction resolved it first
        raise LedgerError("exception_resolved", exception_id=exception_id,
                          state=exception(conn, exception_id).state)
    record(conn, actor, f"ledger.exception.{action}", f"recon_exception:{exception_id}",
           before={"state": row.state},
           after={"state": state, "note": note, "adjustment_entry_id": entry_id})
    return exception(conn, exception_id)
