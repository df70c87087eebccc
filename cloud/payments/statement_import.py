"""The providers' daily statements, fetched and reconciled with the ledger
(cloud/ledger/reconciliation.py): the provider is asked with no transaction open, then the
statement is reconciled in one transaction, so a slow provider holds no lock.

The payments area adds what only it knows: which refund numbers the hub asked for, so that a
refund the ledger lacks is told apart as a missing callback (asked, never heard of again) or a
refund the hub never asked for.

The worker imports yesterday's statement of each provider once a day
(:func:`register_tasks`): a provider's statement is ready after 10:00 the next day, China
time; a day already imported is not asked again.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from cloud.core.audit import SYSTEM
from cloud.core.errors import HubError
from cloud.ledger.reconciliation import CHINA, Imported, StatementLine, reconcile
from cloud.ledger.tables import recon_imports
from cloud.payments.providers import BillRow, Provider
from cloud.payments.tables import payment_refunds, payments

log = logging.getLogger(__name__)

STATEMENT_PROVIDERS = ("wechat", "alipay")  # the booth's cash drawer has no statement
READY_AFTER = time(10, 30)  # China time, the day after: statements are ready after 10:00
TASK_SECONDS = 3600
_CHUNK = 500


def lines_of(rows: Iterable[BillRow]) -> list[StatementLine]:
    """A provider's statement rows as the ledger reads them (every row: a row listed twice
    stays twice)."""
    return [StatementLine(r.kind, r.out_trade_no, r.amount,
                          r.out_refund_no if r.kind == "refund" else None) for r in rows]


def asked_refunds(conn: sa.Connection, provider: str, numbers: Collection[str]) -> set[str]:
    """Which of the refund ``numbers`` the hub asked ``provider`` for."""
    numbers = sorted(n for n in numbers if n)
    found: set[str] = set()
    for i in range(0, len(numbers), _CHUNK):
        found.update(conn.execute(
            sa.select(payment_refunds.c.out_refund_no)
            .join(payments, payments.c.id == payment_refunds.c.payment_id)
            .where(payments.c.provider == provider,
                   payment_refunds.c.out_refund_no.in_(numbers[i:i + _CHUNK]))).scalars())
    return found


def import_statement(engine: sa.Engine, adapter: Provider, day: date, actor: str,
                     now: datetime) -> Imported:
    """Fetch ``adapter``'s statement of ``day`` (no transaction open while it is asked) and
    reconcile it with the ledger in one transaction; a statement the provider will not give,
    or that does not hold together, is the adapter's PaymentError and changes nothing."""
    lines = lines_of(adapter.bill(day))
    with engine.begin() as conn:
        asked = asked_refunds(conn, adapter.name,
                              {line.out_refund_no for line in lines if line.kind == "refund"})
        imported = reconcile(conn, adapter.name, day, lines, actor, now, asked_refunds=asked)
    log.info("%s statement of %s: %s rows, %s new exceptions", adapter.name, day,
             imported.rows, len(imported.exceptions))
    return imported


def _imported(engine: sa.Engine, provider: str, day: date) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(recon_imports.c.id).where(
            recon_imports.c.provider == provider,
            recon_imports.c.day == day.isoformat()).limit(1)).first() is not None


def daily_import(providers: Mapping[str, Provider]):
    """The worker's periodic task (apart: it gets the engine): yesterday's statement of each
    provider that has statements, once it is ready and unless it was imported. One provider's
    failure stops no other; the first is raised once all were tried (the worker logs it, and
    the next turn tries that day again)."""
    def task(engine: sa.Engine, now: datetime) -> int:
        local = now.astimezone(CHINA)
        if local.time() < READY_AFTER:
            return 0
        day = local.date() - timedelta(days=1)
        done, failed = 0, None
        for name in sorted(set(providers) & set(STATEMENT_PROVIDERS)):
            if _imported(engine, name, day):
                continue
            try:
                import_statement(engine, providers[name], day, SYSTEM, now)
                done += 1
            except HubError as e:
                log.error("%s statement of %s not imported: %s", name, day, e)
                failed = failed or e
        if failed is not None:
            raise failed
        return done
    return task


def register_tasks(tasks, providers: Mapping[str, Provider]) -> None:
    """The worker's part of reconciliation: the daily statements' import."""
    tasks.every("import_statements", TASK_SECONDS, daily_import(providers), apart=True)
