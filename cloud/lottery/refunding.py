"""The money of those who did not win goes back, in batches, through the provider it came
from, each refund confirmed by the provider's own notification.

A batch opens refunds for the next applications ``lost`` (not drawn) or ``refused`` (failed
the freeze's check, or given up because their session was cancelled:
cloud/lottery/cancelling.py) in one transaction — each application moves to ``refunding``
with its refund, numbered from the application so that a batch run again finds the same
refund and the provider refunds once — then asks the provider for each with no transaction open
(cloud/payments/capturing.py ``send_apart``). A refund not answered is asked again by the
payments area's follow-up. :func:`settle` moves an application to ``refunded`` (and its order)
once the provider confirmed; a refund the provider refused puts it back in line for another.
Run again after a stop, it does only what is left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.core.audit import SYSTEM, record
from cloud.core.errors import HubError
from cloud.lottery.errors import LotteryError
from cloud.lottery.presales import cancelled_lots
from cloud.lottery.tables import presale_applications, presales
from cloud.payments.capturing import send_apart
from cloud.payments.providers import Provider
from cloud.payments.refunds import open_refund
from cloud.payments.tables import payment_refunds, payments
from cloud.sales.orders import refunded_whole
from cloud.sales.tables import orders
from sync.timeutil import utcnow

log = logging.getLogger(__name__)

REFUND_JOB = "lottery.refund_losers"
BATCH = 50
ASKING = 8  # refunds of a batch asked of the providers at once
REASON = "presale: not drawn"


@dataclass
class Report:
    asked: int = 0
    batches: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"asked": self.asked, "batches": self.batches,
                "failures": [list(f) for f in self.failures]}


def progress(conn: sa.Connection, presale_id: int,
             lots: Sequence[int] | None = None) -> dict[str, int]:
    """How far the refunds are (of these lots only, when named): waiting to be asked, asked,
    confirmed (refunded). A refund the provider's notification confirmed counts as refunded
    at once, before :func:`settle` (a periodic task) moves its application."""
    a = presale_applications.c
    where = [a.presale_id == presale_id,
             a.state.in_(("lost", "refused", "refunding", "refunded"))]
    if lots is not None:
        where.append(a.lot_id.in_(lots))
    shown = sa.case((sa.and_(a.state == "refunding", payment_refunds.c.state == "succeeded"),
                     "refunded"), else_=a.state)
    rows = dict(conn.execute(sa.select(shown, sa.func.count()).select_from(
        presale_applications.outerjoin(payment_refunds, payment_refunds.c.id == a.refund_id))
        .where(*where).group_by(shown)).all())
    waiting = rows.get("lost", 0) + rows.get("refused", 0)
    return {"waiting": waiting, "asked": rows.get("refunding", 0),
            "refunded": rows.get("refunded", 0),
            "total": waiting + rows.get("refunding", 0) + rows.get("refunded", 0)}


def _refund_number(conn: sa.Connection, number: str) -> str:
    """``L<application>``, then ``L<application>R2``… after refunds the provider refused."""
    tried = conn.execute(sa.select(sa.func.count()).select_from(payment_refunds).where(
        payment_refunds.c.out_refund_no.like(f"L{number}%"),
        payment_refunds.c.state == "failed")).scalar_one()
    return f"L{number}" + (f"R{tried + 1}" if tried else "")


def refund_scope(conn: sa.Connection, presale_id: int,
                 cancelled_only: bool = False) -> tuple[int, ...] | None:
    """The lots whose applications ``lost`` or ``refused`` may be refunded now: every lot
    (``None``) once the presale is drawn; before that, or when ``cancelled_only``, those of
    cancelled sessions. A presale not drawn with no cancelled session refunds nothing yet
    (``presale_state``)."""
    state = conn.execute(sa.select(presales.c.state).where(
        presales.c.id == presale_id)).scalar()
    if state in ("drawn", "assigned") and not cancelled_only:
        return None
    cancelled = tuple(cancelled_lots(conn, presale_id)) if state is not None else ()
    if not cancelled and not cancelled_only:
        raise LotteryError("presale_state", state=state or "unknown", action="refunds",
                           needs="drawn", field="presale_id")
    return cancelled


def open_batch(conn: sa.Connection, presale_id: int, limit: int, now: datetime,
               skip: frozenset[str] = frozenset(), lots: Sequence[int] | None = None
               ) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """Open refunds for the next applications to refund (of these lots only, when named;
    but those in ``skip``, which could not be opened earlier in this run): (provider, refund
    id) for each, and (application, code) for those that could not be opened."""
    a = presale_applications.c
    q = sa.select(a.id, a.number, a.amount, orders.c.payment_provider,
                  orders.c.payment_reference).join(orders, orders.c.id == a.order_id).where(
        a.presale_id == presale_id, a.state.in_(("lost", "refused"))).order_by(a.id)
    if skip:
        q = q.where(a.number.not_in(sorted(skip)))
    if lots is not None:
        q = q.where(a.lot_id.in_(lots))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(of=presale_applications, skip_locked=True)
    opened, failed = [], []
    for app in conn.execute(q.limit(limit)).all():
        pay = conn.execute(sa.select(payments.c.id, payments.c.provider).where(
            payments.c.provider == app.payment_provider,
            payments.c.out_trade_no == app.payment_reference)).first()
        try:
            if pay is None or app.amount <= 0:
                raise LotteryError("unknown_application", number=app.number)
            with conn.begin_nested():
                rid = open_refund(conn, pay.provider, pay.id, app.amount, REASON, SYSTEM, now,
                                  out_refund_no=_refund_number(conn, app.number))
        except HubError as e:
            log.error("presale refund of %s cannot be opened: %s", app.number, e)
            failed.append((app.number, e.code))
            continue
        conn.execute(sa.update(presale_applications).where(a.id == app.id)
                     .values(state="refunding", refund_id=rid))
        opened.append((pay.provider, rid))
    return opened, failed


def settle(conn: sa.Connection, presale_id: int | None = None,
           now: datetime | None = None) -> int:
    """Applications whose refund the provider confirmed become ``refunded`` (their orders
    too); those whose refund failed go back in line. How many moved."""
    now = now or utcnow()
    a = presale_applications.c
    q = sa.select(a.id, a.order_id, a.presale_id, a.number, payment_refunds.c.state).join(
        payment_refunds, payment_refunds.c.id == a.refund_id).where(
        a.state == "refunding", payment_refunds.c.state.in_(("succeeded", "failed")))
    if presale_id is not None:
        q = q.where(a.presale_id == presale_id)
    moved = 0
    for r in conn.execute(q.order_by(a.id)).all():
        ok = r.state == "succeeded"
        moved += conn.execute(sa.update(presale_applications).where(
            a.id == r.id, a.state == "refunding").values(
            state="refunded" if ok else "lost",
            refund_id=a.refund_id if ok else None)).rowcount
        if ok:
            refunded_whole(conn, r.order_id)
            record(conn, SYSTEM, "presale.refunded", f"presale:{r.presale_id}", None,
                   {"application": r.number})
    return moved


def _ask_all(engine: sa.Engine, providers: Mapping[str, Provider],
             notify_url: Callable[[str], str], opened: list[tuple[str, int]],
             now: datetime) -> None:
    """Ask the providers for a batch's refunds, several at once: each ask waits on the
    network, not on the database (its short transactions are its own). A provider not
    configured here is asked by the payments follow-up once it is."""
    def ask(item: tuple[str, int]) -> None:
        provider, rid = item
        adapter = providers.get(provider)
        if adapter is None:
            return
        try:
            send_apart(engine, adapter, rid, now, notify_url(provider))
        except HubError as e:  # asked again by the payments follow-up
            log.warning("presale refund %s: %s", rid, e)

    with ThreadPoolExecutor(max_workers=ASKING) as pool:
        list(pool.map(ask, opened))


def refund_losers(engine: sa.Engine, presale_id: int, providers: Mapping[str, Provider],
                  notify_url: Callable[[str], str], now: datetime | None = None,
                  batch: int = BATCH,
                  after_batch: Callable[[Report], None] | None = None,
                  cancelled_only: bool = False) -> Report:
    """Refund every application not drawn (or refused), batch after batch: of every lot once
    the presale is drawn, else (or when ``cancelled_only``) of the lots of cancelled sessions
    (:func:`refund_scope`)."""
    now = now or utcnow()
    report = Report()
    with engine.connect() as conn:
        lots = refund_scope(conn, presale_id, cancelled_only)
    if lots == ():
        return report
    while True:
        # one that could not be opened is not asked again in this run: it would take a place
        # in every batch, and a batch of only those would end the run before the rest
        with engine.begin() as conn:
            opened, failed = open_batch(conn, presale_id, batch, now,
                                        frozenset(n for n, _ in report.failures), lots)
        report.failures.extend(failed)
        if not opened and not failed:
            break
        _ask_all(engine, providers, notify_url, opened, now)
        report.asked += len(opened)
        report.batches += 1
        with engine.begin() as conn:
            settle(conn, presale_id, now)
        if after_batch is not None:
            after_batch(report)
    return report


def refund_handler(providers: Mapping[str, Provider],
                   notify_url: Callable[[str], str]) -> Callable:
    """The worker's handler of :data:`REFUND_JOB` (apart: batches are their own
    transactions)."""
    def handle(engine: sa.Engine, payload: dict[str, Any], now: datetime) -> None:
        report = refund_losers(engine, payload["presale_id"], providers, notify_url, now,
                               cancelled_only=bool(payload.get("cancelled")))
        log.info("presale %s refunds: %s", payload["presale_id"], report.as_json())
    return handle


def register_tasks(tasks, providers: Mapping[str, Provider],
                   notify_url: Callable[[str], str]) -> None:
    """The worker's part of the lottery: the refund job (apart: the provider is asked with
    no transaction open) and the settling of refunds the providers confirmed."""
    tasks.register(REFUND_JOB, refund_handler(providers, notify_url), apart=True)
    tasks.every("settle_presale_refunds", 30, lambda conn, now: settle(conn, None, now))
