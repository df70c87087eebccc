"""The freeze and the seed.

At the deadline the applications are frozen: those never paid are voided (their orders
cancelled, so a payment arriving later is refunded), those paid are checked again (every
holder still verified, the buyer's limit) and the rest refused (refunded with the losers);
what is left is exported as the canonical list (cloud/lottery/draw.py) whose SHA-256 is then
published on the presale's public page.

The seed is fixed after that, by two people: the first enters the value (a notary's number
drawn on site, or a public beacon's randomness for a round stated in advance) and only its
hash is kept; the second, another staff account, enters it again without seeing it; when the
two agree the seed is fixed, else both start again. Nobody at the hub chooses it alone.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

import sqlalchemy as sa

from cloud.buyers import companions
from cloud.buyers.own_identity import own_holder
from cloud.core.audit import record
from cloud.core.errors import HubError
from cloud.lottery import draw
from cloud.lottery.applying import void_application, void_lapsed
from cloud.lottery.errors import LotteryError
from cloud.lottery.presales import lots, move, presale
from cloud.lottery.tables import presale_applications, presale_holders, presales
from cloud.sales.orders import cancel_order
from cloud.sales.tables import orders
from sync.timeutil import utcnow

log = logging.getLogger(__name__)


def _still_verified(conn: sa.Connection, buyer: str, person: str) -> bool:
    if not buyer.startswith("buyer:"):
        return True  # a booth's application: the clerk saw the documents
    buyer_id = int(buyer.removeprefix("buyer:"))
    try:
        if person == "me":
            own_holder(conn, buyer_id)
        elif person.startswith("c") and person[1:].isdigit():
            companions.holder(conn, buyer_id, int(person[1:]))
        return True
    except HubError:
        return False


def _refuse(conn: sa.Connection, application_id: int, reason: str) -> None:
    conn.execute(sa.update(presale_applications).where(
        presale_applications.c.id == application_id,
        presale_applications.c.state == "applied").values(state="refused", reason=reason))
    conn.execute(sa.update(presale_holders).where(
        presale_holders.c.application_id == application_id).values(live=False))


def _settle_unpaid(conn: sa.Connection, presale_id: int, actor: str, now: datetime) -> int:
    """Void what was never paid; an order still waiting is cancelled (a late payment is
    refunded by the payments area)."""
    voided = void_lapsed(conn, presale_id, now)
    waiting = conn.execute(sa.select(presale_applications.c.id, orders.c.id.label("oid"))
                           .join(orders, orders.c.id == presale_applications.c.order_id)
                           .where(presale_applications.c.presale_id == presale_id,
                                  presale_applications.c.state == "applied",
                                  orders.c.state == "pending_payment")).all()
    for a in waiting:
        cancel_order(conn, a.oid, actor, now)
        voided += void_application(conn, a.id, "not paid by the deadline")
    return voided


def _check_paid(conn: sa.Connection, p) -> int:
    """Refuse the paid applications whose holders are no longer verified, then those past
    the buyer's limit (newest first); how many were refused."""
    refused = 0
    apps = conn.execute(sa.select(presale_applications.c.id, presale_applications.c.buyer,
                                  presale_applications.c.quantity)
                        .where(presale_applications.c.presale_id == p.id,
                               presale_applications.c.state == "applied")
                        .order_by(presale_applications.c.id)).all()
    people: dict[int, list[str]] = {}
    for app_id, person in conn.execute(sa.select(
            presale_holders.c.application_id, presale_holders.c.person)
            .join(presale_applications,
                  presale_applications.c.id == presale_holders.c.application_id)
            .where(presale_applications.c.presale_id == p.id,
                   presale_applications.c.state == "applied")):
        people.setdefault(app_id, []).append(person)
    used: dict[str, int] = {}
    for a in apps:
        if not all(_still_verified(conn, a.buyer, who) for who in people.get(a.id, [])):
            _refuse(conn, a.id, "holder no longer verified")
            refused += 1
            continue
        used[a.buyer] = used.get(a.buyer, 0) + a.quantity
        if p.buyer_limit is not None and used[a.buyer] > p.buyer_limit:
            _refuse(conn, a.id, "over the buyer's limit")
            refused += 1
    return refused


def freeze(conn: sa.Connection, presale_id: int, actor: str,
           now: datetime | None = None) -> str:
    """Freeze the presale's applications after its deadline and keep the canonical list; the
    list's SHA-256."""
    now = now or utcnow()
    p = presale(conn, presale_id, lock=True)
    if p.state != "open":
        raise LotteryError("presale_state", state=p.state, action="freezing", needs="open",
                           field="presale_id")
    if now < p.closes_at:
        raise LotteryError("presale_still_open", closes=p.closes_at.isoformat(),
                           field="presale_id")
    voided = _settle_unpaid(conn, presale_id, actor, now)
    refused = _check_paid(conn, p)
    entries = [draw.Entry(r.number, r.lot_id, r.quantity) for r in conn.execute(
        sa.select(presale_applications.c.number, presale_applications.c.lot_id,
                  presale_applications.c.quantity).where(
            presale_applications.c.presale_id == presale_id,
            presale_applications.c.state == "applied"))]
    data = draw.canonical_list(presale_id, [draw.Lot(x.id, x.session_id, x.price_tier_id,
                                                     x.tickets) for x in lots(conn, p.id)],
                               entries)
    digest = draw.list_hash(data)
    move(conn, presale_id, "open", "frozen", actor, "freeze", frozen_at=now, list_file=data,
         list_sha256=digest)
    record(conn, actor, "presale.frozen", f"presale:{presale_id}", None,
           {"applications": len(entries), "voided": voided, "refused": refused,
            "list_sha256": digest})
    log.info("presale %s frozen: %s applications, %s voided, %s refused, list %s",
             presale_id, len(entries), voided, refused, digest)
    return digest


def enter_seed(conn: sa.Connection, presale_id: int, actor: str, text: str,
               now: datetime | None = None) -> str:
    """One of the two entries of the seed: ``first`` (kept as a hash, waiting for the second
    person), ``fixed`` (the second agreed) or ``mismatch`` (they differ: both start again)."""
    now = now or utcnow()
    p = presale(conn, presale_id, lock=True)
    if p.state != "frozen":
        raise LotteryError("presale_state", state=p.state, action="entering the seed",
                           needs="frozen", field="presale_id")
    if p.seed is not None:
        raise LotteryError("seed_fixed", field="seed")
    try:
        seed = draw.normal_seed(text)
    except draw.DrawError:
        raise LotteryError("bad_presale", field="seed") from None
    digest = hashlib.sha256(seed.encode()).hexdigest()
    values: dict
    if p.seed_first_by is None:
        outcome, values = "first", {"seed_first_by": actor, "seed_first_hash": digest}
    elif p.seed_first_by == actor:
        raise LotteryError("seed_same_person", actor=actor, field="seed")
    elif p.seed_first_hash != digest:
        outcome, values = "mismatch", {"seed_first_by": None, "seed_first_hash": None}
    else:
        outcome, values = "fixed", {"seed": seed, "seed_by": f"{p.seed_first_by}, {actor}",
                                    "seed_fixed_at": now}
    conn.execute(sa.update(presales).where(presales.c.id == presale_id).values(**values))
    record(conn, actor, f"presale.seed_{outcome}", f"presale:{presale_id}", None,
           {"seed": seed} if outcome == "fixed" else None)
    return outcome
