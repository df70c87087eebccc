"""A presale: an event's sessions and price tiers (its lots, each with the tickets in its
draw) offered to verified buyers between ``opens_at`` and ``closes_at``, with a per-person
limit, real-name or not, on the channels named; set up as a draft, then opened.

The state moves only forward, each step a conditional UPDATE from the state it needs, so two
staff members pressing one button move it once: draft → open → frozen → drawn → assigned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import price_tiers, seats, sessions
from cloud.core.audit import record
from cloud.inventory.tables import session_seats
from cloud.lottery.errors import LotteryError
from cloud.lottery.tables import presale_lots, presales
from sync.timeutil import utcnow

CHANNELS = ("storefront", "booth", "partner")
MAX_NAME = 200


@dataclass(frozen=True)
class Lot:
    id: int
    session_id: int
    price_tier_id: int
    tickets: int
    session: str
    tier: str
    amount: int
    currency: str
    category: str | None
    starts_at: datetime | None


def _bad(field: str) -> LotteryError:
    return LotteryError("bad_presale", field=field)


def create_presale(conn: sa.Connection, *, event_id: int, name: str, opens_at: datetime,
                   closes_at: datetime, actor: str, real_name: bool = True,
                   max_quantity: int = 4, buyer_limit: int | None = None,
                   channels: tuple[str, ...] = ("storefront",), payment_minutes: int = 15,
                   now: datetime | None = None) -> int:
    """A draft presale of an event; its id. Each value is checked and refused naming it."""
    name = (name or "").strip()
    if not 1 <= len(name) <= MAX_NAME or not name.isprintable():
        raise _bad("name")
    if not (isinstance(opens_at, datetime) and isinstance(closes_at, datetime)
            and opens_at < closes_at):
        raise _bad("closes_at")
    if not 1 <= max_quantity <= 10:
        raise _bad("max_quantity")
    if buyer_limit is not None and buyer_limit < 1:
        raise _bad("buyer_limit")
    if not channels or any(c not in CHANNELS for c in channels):
        raise _bad("channels")
    if not 1 <= payment_minutes <= 1440:
        raise _bad("payment_minutes")
    try:
        with conn.begin_nested():
            pid = conn.execute(sa.insert(presales).values(
                event_id=event_id, name=name, opens_at=opens_at, closes_at=closes_at,
                real_name=real_name, max_quantity=max_quantity, buyer_limit=buyer_limit,
                channels=sorted(set(channels)), payment_minutes=payment_minutes,
                created_by=actor, created_at=now or utcnow()).returning(presales.c.id)
            ).scalar_one()
    except sa.exc.IntegrityError:
        raise _bad("event_id") from None
    record(conn, actor, "presale.create", f"presale:{pid}", None,
           {"event_id": event_id, "name": name, "opens_at": opens_at.isoformat(),
            "closes_at": closes_at.isoformat(), "channels": sorted(set(channels))})
    return pid


def presale(conn: sa.Connection, presale_id: int, *, lock: bool = False):
    q = sa.select(presales).where(presales.c.id == presale_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise LotteryError("unknown_presale", presale_id=presale_id, field="presale_id")
    return row


def free_seats_of(conn: sa.Connection, session_id: int, category: str | None) -> int:
    """Sellable seats of a session not sold (of one venue category, when the tier names
    one)."""
    q = sa.select(sa.func.count()).select_from(session_seats).where(
        session_seats.c.session_id == session_id, session_seats.c.category == "sellable",
        session_seats.c.status != "sold")
    if category is not None:
        q = q.join(seats, seats.c.id == session_seats.c.seat_id).where(
            seats.c.category == category)
    return conn.execute(q).scalar_one()


def add_lot(conn: sa.Connection, presale_id: int, session_id: int, price_tier_id: int,
            tickets: int, actor: str) -> int:
    """Offer a session × price tier of the presale's event with ``tickets`` in its draw (no
    more than that tier's seats not sold); only while the presale is a draft."""
    p = presale(conn, presale_id, lock=True)
    if p.state != "draft":
        raise LotteryError("presale_state", state=p.state, action="adding a lot",
                           needs="draft", field="presale_id")
    t = conn.execute(sa.select(price_tiers.c.seat_category).join(
        sessions, sessions.c.id == price_tiers.c.session_id).where(
        price_tiers.c.id == price_tier_id, sessions.c.id == session_id,
        sessions.c.event_id == p.event_id)).first()
    if t is None:
        raise LotteryError("lot_not_in_event", session_id=session_id, tier_id=price_tier_id,
                           field="price_tier_id")
    if isinstance(tickets, bool) or not isinstance(tickets, int) or tickets < 1:
        raise _bad("tickets")
    free = free_seats_of(conn, session_id, t.seat_category)
    if tickets > free:
        raise LotteryError("lot_over_seats", tickets=tickets, seats=free, field="tickets")
    try:
        with conn.begin_nested():
            lot_id = conn.execute(sa.insert(presale_lots).values(
                presale_id=presale_id, session_id=session_id, price_tier_id=price_tier_id,
                tickets=tickets).returning(presale_lots.c.id)).scalar_one()
    except sa.exc.IntegrityError:
        raise _bad("price_tier_id") from None
    record(conn, actor, "presale.lot_add", f"presale:{presale_id}", None,
           {"lot_id": lot_id, "session_id": session_id, "price_tier_id": price_tier_id,
            "tickets": tickets})
    return lot_id


def lots(conn: sa.Connection, presale_id: int) -> list[Lot]:
    return [Lot(r.id, r.session_id, r.price_tier_id, r.tickets, r.session, r.tier, r.amount,
                r.currency, r.seat_category, r.starts_at) for r in conn.execute(
        sa.select(presale_lots, sessions.c.name.label("session"),
                  sessions.c.starts_at, price_tiers.c.name.label("tier"),
                  price_tiers.c.amount, price_tiers.c.currency, price_tiers.c.seat_category)
        .join(sessions, sessions.c.id == presale_lots.c.session_id)
        .join(price_tiers, price_tiers.c.id == presale_lots.c.price_tier_id)
        .where(presale_lots.c.presale_id == presale_id).order_by(presale_lots.c.id))]


def cancelled_lots(conn: sa.Connection, presale_id: int) -> list[int]:
    """The presale's lots whose session is cancelled (their applications are given up and
    refunded: cloud/lottery/cancelling.py)."""
    return list(conn.execute(sa.select(presale_lots.c.id).join(
        sessions, sessions.c.id == presale_lots.c.session_id).where(
        presale_lots.c.presale_id == presale_id, sessions.c.state == "cancelled")
        .order_by(presale_lots.c.id)).scalars())


def session_cancelled(conn: sa.Connection, session_id: int, *, lock: bool = False) -> bool:
    """Whether the session is cancelled. With ``lock`` its row is read ``FOR SHARE``, so a
    cancellation waits for this transaction: the session's bulk refund (which the
    cancellation starts) then finds the tickets it issues, and nothing is seated once the
    session is cancelled."""
    q = sa.select(sessions.c.state).where(sessions.c.id == session_id)
    return conn.execute(q.with_for_update(read=True) if lock else q).scalar() == "cancelled"


def check_session(conn: sa.Connection, session_id: int, *, lock: bool = False,
                  field: str = "lot_id") -> None:
    """Refuse a lot of a cancelled session (``lot_session_cancelled``, naming ``field``)."""
    if session_cancelled(conn, session_id, lock=lock):
        raise LotteryError("lot_session_cancelled", session_id=session_id, field=field)


def move(conn: sa.Connection, presale_id: int, from_state: str, to_state: str, actor: str,
         action: str, **values) -> None:
    """Move the presale from ``from_state`` (else ``presale_state``), audited."""
    done = conn.execute(sa.update(presales).where(
        presales.c.id == presale_id, presales.c.state == from_state)
        .values(state=to_state, **values)).rowcount
    if not done:
        p = presale(conn, presale_id)
        raise LotteryError("presale_state", state=p.state, action=action, needs=from_state,
                           field="presale_id")
    record(conn, actor, f"presale.{action}", f"presale:{presale_id}", {"state": from_state},
           {"state": to_state})


def open_presale(conn: sa.Connection, presale_id: int, actor: str) -> None:
    """A draft with at least one lot starts taking applications (from ``opens_at``)."""
    if not lots(conn, presale_id):
        raise _bad("lots")
    move(conn, presale_id, "draft", "open", actor, "open")


def list_presales(conn: sa.Connection, event_id: int | None = None) -> list:
    q = sa.select(presales.c.id, presales.c.event_id, presales.c.name, presales.c.state,
                  presales.c.opens_at, presales.c.closes_at, presales.c.list_sha256,
                  presales.c.choose_closes_at).order_by(presales.c.id.desc())
    if event_id is not None:
        q = q.where(presales.c.event_id == event_id)
    return conn.execute(q).all()
