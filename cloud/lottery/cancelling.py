"""A presale's lots whose session is cancelled: their applications leave the presale and
their money goes back.

A session is cancelled by inventory (cloud/inventory/sessions.py ``cancel_session``), which
knows nothing of presales; its bulk refund (cloud/payments/refund_approval.py) refunds the
paid orders that hold tickets, so an application already seated is refunded there, with
the session's orders. An application holds no ticket before its seats, so the lottery
notices the cancellation itself: a periodic task of the worker (:func:`give_up_cancelled`)
finds the applications of lots of cancelled sessions still in the presale and

* one waiting for payment has its order cancelled (a payment arriving later is refunded by
  the payments area, as after the freeze) and becomes ``void``;
* one paid (in the draw, or drawn and without seats) becomes ``refused`` with the reason
  :data:`SESSION_CANCELLED`, and a refund job of the presale's (cloud/lottery/refunding.py,
  ``cancelled`` in its payload: only the lots of cancelled sessions) is written in the same
  transaction. Its refunds are those of the applications not drawn: the same batches, each
  numbered from its application (``L<number>``), confirmed by the provider's notification.

Each batch is one transaction that moves each application at most once (conditional
updates), so a run stopped anywhere resumes with what is left, and a refund job run again
asks nothing twice. Seats are never given in a cancelled session (cloud/lottery/choosing.py
reads the session ``FOR SHARE``), nor an application taken for it (``lot_session_cancelled``).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.catalog.tables import sessions
from cloud.core.audit import SYSTEM, record
from cloud.core.jobs import enqueue
from cloud.lottery.applying import give_up
from cloud.lottery.presales import cancelled_lots
from cloud.lottery.refunding import REFUND_JOB, progress
from cloud.lottery.tables import presale_applications, presale_lots
from cloud.sales.orders import cancel_order
from cloud.sales.tables import orders
from sync.timeutil import utcnow

log = logging.getLogger(__name__)

SESSION_CANCELLED = "session cancelled"
BATCH = 200
EVERY_S = 60


def _next(conn: sa.Connection, after: int, limit: int) -> list[sa.Row]:
    """The next applications (by id, after ``after``) still in a presale whose lot's session
    is cancelled."""
    a = presale_applications.c
    q = (sa.select(a.id, a.presale_id, a.order_id)
         .join(presale_lots, presale_lots.c.id == a.lot_id)
         .join(sessions, sessions.c.id == presale_lots.c.session_id)
         .where(sessions.c.state == "cancelled", a.state.in_(("applied", "won")), a.id > after)
         .order_by(a.id).limit(limit))
    return conn.execute(q).all()


def _give_up_one(conn: sa.Connection, app: sa.Row, now: datetime) -> str | None:
    """Void one application never paid (its order cancelled first) or refuse one paid; what
    it became (None when another run moved it first). The order is locked before the
    application, as the freeze does, and a payment taken meanwhile is seen here."""
    state = conn.execute(sa.select(orders.c.state).where(orders.c.id == app.order_id)
                         .with_for_update()).scalar()
    if state == "paid":
        return "refused" if give_up(conn, app.id, "refused", SESSION_CANCELLED,
                                    ("applied", "won")) else None
    if state == "pending_payment":
        cancel_order(conn, app.order_id, SYSTEM, now)
    return "void" if give_up(conn, app.id, "void", SESSION_CANCELLED, ("applied",)) else None


def give_up_batch(conn: sa.Connection, after: int, now: datetime,
                  limit: int = BATCH) -> tuple[int, Counter]:
    """One batch, in the caller's transaction: the last application id looked at (0 when
    none was left) and how many became ``refused`` / ``void`` per presale. Each presale with
    a refused application gets its refund job and an audit record in this transaction."""
    apps = _next(conn, after, limit)
    moved: dict[int, Counter] = {}
    for app in apps:
        became = _give_up_one(conn, app, now)
        if became is not None:
            moved.setdefault(app.presale_id, Counter())[became] += 1
    total: Counter = Counter()
    for presale_id, n in sorted(moved.items()):
        job = enqueue(conn, REFUND_JOB, {"presale_id": presale_id, "cancelled": True},
                      now=now) if n["refused"] else None
        record(conn, SYSTEM, "presale.session_cancelled", f"presale:{presale_id}", None,
               {"refused": n["refused"], "voided": n["void"], "job": job})
        total.update(n)
    return (apps[-1].id if apps else 0), total


def give_up_cancelled(engine: sa.Engine, now: datetime | None = None,
                      batch: int = BATCH) -> dict[str, int]:
    """Every application of a lot whose session is cancelled leaves its presale, batch after
    batch (each its own transaction); how many were refused (to be refunded) and voided."""
    now = now or utcnow()
    total: Counter = Counter()
    after = 0
    while True:
        with engine.begin() as conn:
            after, n = give_up_batch(conn, after, now, batch)
        total.update(n)
        if not after:
            return {"refused": total["refused"], "voided": total["void"]}


def cancelled_progress(conn: sa.Connection, presale_id: int) -> dict[str, Any] | None:
    """What the presale's lots of cancelled sessions have come to (None when there are
    none): their sessions' names, the refunds as :func:`refunding.progress` counts them
    (with the paid applications not yet given up counted waiting), those seated (refunded
    with the session's orders) and those voided."""
    lots = cancelled_lots(conn, presale_id)
    if not lots:
        return None
    a = presale_applications.c
    shown = progress(conn, presale_id, lots)
    rows = dict(conn.execute(sa.select(a.state, sa.func.count())
                             .join(orders, orders.c.id == a.order_id)
                             .where(a.lot_id.in_(lots), sa.or_(
                                 a.state.in_(("won", "seated", "void")),
                                 sa.and_(a.state == "applied", orders.c.state == "paid")))
                             .group_by(a.state)).all())
    pending = rows.get("applied", 0) + rows.get("won", 0)
    names = conn.execute(sa.select(sessions.c.name).join(
        presale_lots, presale_lots.c.session_id == sessions.c.id)
        .where(presale_lots.c.id.in_(lots)).distinct().order_by(sessions.c.name)).scalars()
    return {**shown, "waiting": shown["waiting"] + pending, "total": shown["total"] + pending,
            "seated": rows.get("seated", 0), "voided": rows.get("void", 0),
            "sessions": ", ".join(names)}


def register_tasks(tasks) -> None:
    """The worker's part: applications of cancelled sessions given up (and their refund jobs
    written), apart so that each batch is its own transaction."""
    tasks.every("presales_of_cancelled_sessions", EVERY_S,
                lambda engine, now: give_up_cancelled(engine, now), apart=True)
