"""Applying for a presale: a buyer asks for session × tier × quantity, naming a verified
holder per ticket on a real-name presale, and pays through an order of kind ``presale``
(cloud/sales/orders.py ``open_presale_order``) before its deadline.

The rules hold under races because each is one statement the database decides:

* one document per session across every application: the partial unique index on the live
  holders (cloud/lottery/tables.py), never a read;
* the buyer's limit: a conditional upsert of their counter (``used + n <= limit``);
* an application whose payment lapsed gives its place back: before an application takes
  anything, the lapsed applications of its buyer and of its documents are voided in its own
  transaction (as an order tidies lapsed orders: cloud/sales/holding.py), and the freeze voids
  the rest. A payment arriving after that is refused and refunded by the payments area.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.buyers import companions
from cloud.buyers.errors import BuyerError
from cloud.buyers.own_identity import own_holder
from cloud.core.audit import record
from cloud.core.seal import keyring_for
from cloud.lottery.errors import LotteryError
from cloud.lottery.presales import check_session, lots, presale
from cloud.lottery.tables import (
    presale_applications,
    presale_counts,
    presale_holders,
)
from cloud.sales.flags import refuse_buying
from cloud.sales.holders import add_holders
from cloud.sales.order_plan import check_holder
from cloud.sales.orders import open_presale_order
from cloud.sales.tables import orders
from sync import numbers
from sync.timeutil import utcnow


@dataclass(frozen=True)
class Applied:
    application_id: int
    number: str
    order_id: int
    order_number: str
    amount: int
    currency: str
    expires_at: datetime


def named_holders(conn: sa.Connection, buyer_id: int,
                  keys: list[str]) -> list[tuple[str, tuple[str, str, str]]]:
    """Each holder an account names — ``"me"`` (the buyer's own verified identity) or
    ``"c<id>"`` (a verified companion) — as (key, (name, document type, number)) for
    :func:`apply`; the buyers area's refusal names the holder's place (``holders.<i>``)."""
    found = []
    for i, key in enumerate(keys):
        try:
            if key == "me":
                person = own_holder(conn, buyer_id)
            elif key[:1] == "c" and key[1:].isdigit():
                person = companions.holder(conn, buyer_id, int(key[1:]))
            else:
                raise BuyerError("bad_field", field=f"holders.{i}")
        except BuyerError as e:
            raise BuyerError(e.code, **{**e.params, "field": f"holders.{i}"}) from None
        found.append((key, person))
    return found


def _lapsed() -> sa.ColumnElement[bool]:
    return sa.or_(orders.c.state.in_(("expired", "cancelled")), sa.and_(
        orders.c.state == "pending_payment", orders.c.expires_at < sa.bindparam("now")))


def void_application(conn: sa.Connection, application_id: int, reason: str) -> bool:
    """An application never paid gives back its holders' places and its count; True when it
    was still ``applied`` (a second voider changes nothing)."""
    return give_up(conn, application_id, "void", reason, ("applied",))


def give_up(conn: sa.Connection, application_id: int, state: str, reason: str,
            from_states: tuple[str, ...]) -> bool:
    """An application leaves the presale for ``state`` (``void``, or ``refused`` to be
    refunded) and gives back its holders' places and its count; True when it was in one of
    ``from_states`` (a second caller changes nothing)."""
    a = conn.execute(sa.update(presale_applications).where(
        presale_applications.c.id == application_id,
        presale_applications.c.state.in_(from_states))
        .values(state=state, reason=reason[:80]).returning(
        presale_applications.c.presale_id, presale_applications.c.buyer,
        presale_applications.c.quantity)).first()
    if a is None:
        return False
    conn.execute(sa.update(presale_holders).where(
        presale_holders.c.application_id == application_id).values(live=False))
    conn.execute(sa.update(presale_counts).where(
        presale_counts.c.presale_id == a.presale_id,
        presale_counts.c.party == f"b:{a.buyer}").values(used=presale_counts.c.used - a.quantity))
    return True


def void_lapsed(conn: sa.Connection, presale_id: int, now: datetime, *,
                buyer: str | None = None, session_id: int | None = None,
                doc_hashes: list[str] | None = None) -> int:
    """Void the applications whose payment lapsed: all of the presale's, or those of a buyer
    and those naming these documents in a session; how many."""
    q = sa.select(presale_applications.c.id).join(
        orders, orders.c.id == presale_applications.c.order_id).where(
        presale_applications.c.presale_id == presale_id,
        presale_applications.c.state == "applied", _lapsed())
    if buyer is not None:
        mine = presale_applications.c.buyer == buyer
        if doc_hashes:
            mine = sa.or_(mine, presale_applications.c.id.in_(
                sa.select(presale_holders.c.application_id).where(
                    presale_holders.c.live, presale_holders.c.session_id == session_id,
                    presale_holders.c.doc_hash.in_(doc_hashes))))
        q = q.where(mine)
    ids = conn.execute(q.order_by(presale_applications.c.id), {"now": now}).scalars().all()
    return sum(void_application(conn, i, "payment lapsed") for i in ids)


def _count(conn: sa.Connection, presale_id: int, party: str, n: int, limit: int) -> bool:
    """Raise the party's count by n within the limit, in one statement; False without room."""
    if n > limit:
        return False
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(presale_counts).values(presale_id=presale_id, party=party, used=n)
    stmt = stmt.on_conflict_do_update(
        index_elements=["presale_id", "party"], set_={"used": presale_counts.c.used + n},
        where=presale_counts.c.used + n <= limit).returning(presale_counts.c.used)
    return conn.execute(stmt).first() is not None


def _check_open(p, lot_id: int, channel: str, now: datetime, conn: sa.Connection):
    if p.state != "open":
        raise LotteryError("presale_state", state=p.state, action="applying", needs="open",
                           field="presale_id")
    if not p.opens_at <= now < p.closes_at:
        raise LotteryError("presale_not_open", opens=p.opens_at.isoformat(),
                           closes=p.closes_at.isoformat(), field="presale_id")
    if channel not in p.channels:
        raise LotteryError("channel_not_offered", channel=channel, field="channel")
    lot = next((x for x in lots(conn, p.id) if x.id == lot_id), None)
    if lot is None:
        raise LotteryError("unknown_lot", lot_id=lot_id, field="lot_id")
    check_session(conn, lot.session_id)
    return lot


def apply(conn: sa.Connection, presale_id: int, lot_id: int, quantity: int, buyer: str,
          holders: list[tuple[str, tuple[str, str, str]]], *, channel: str = "storefront",
          actor: str | None = None, now: datetime | None = None) -> Applied:
    """Apply for ``quantity`` tickets of a lot, in the caller's transaction. ``holders`` are
    (person key, (name, document type, number)) — the buyer's own verified identity ("me")
    or a verified companion ("c<id>"), resolved by the caller — one per ticket on a real-name
    presale. Refusals name their field and leave nothing once the caller rolls back."""
    now = now or utcnow()
    p = presale(conn, presale_id)
    lot = _check_open(p, lot_id, channel, now, conn)
    if isinstance(quantity, bool) or not isinstance(quantity, int) \
            or not 1 <= quantity <= p.max_quantity:
        raise LotteryError("bad_quantity", limit=p.max_quantity, field="quantity")
    people = [(key, (name, doc_type, check_holder(name, doc_type, number)))
              for key, (name, doc_type, number) in holders]
    docs = [h[2] for _, h in people]
    if p.real_name and (len(people) != quantity or len(set(docs)) != quantity):
        raise LotteryError("holders_mismatch", quantity=quantity, field="holders")
    refuse_buying(conn, buyer, docs, now)
    ring = keyring_for(conn) if people else None
    hashes = [ring.doc_hash(d) for d in docs]
    void_lapsed(conn, presale_id, now, buyer=buyer, session_id=lot.session_id,
                doc_hashes=hashes)
    order_id, order_number = open_presale_order(
        conn, session_id=lot.session_id, buyer=buyer, actor=actor or buyer,
        total=quantity * lot.amount, currency=lot.currency,
        until=now + timedelta(minutes=p.payment_minutes), now=now)
    number = "P" + numbers.new_number()
    app_id = conn.execute(sa.insert(presale_applications).values(
        presale_id=presale_id, lot_id=lot_id, number=number, buyer=buyer, channel=channel,
        quantity=quantity, amount=quantity * lot.amount, currency=lot.currency,
        order_id=order_id, state="applied", created_at=now)
        .returning(presale_applications.c.id)).scalar_one()
    if people:
        ids = add_holders(conn, [h for _, h in people])
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(presale_holders), [
                    {"application_id": app_id, "position": i, "person": key,
                     "holder_id": hid, "session_id": lot.session_id, "doc_hash": h}
                    for i, ((key, _), hid, h) in enumerate(zip(people, ids, hashes,
                                                               strict=True))])
        except sa.exc.IntegrityError:
            raise LotteryError("holder_already_applied", field="holders") from None
    if p.buyer_limit is not None and not _count(conn, presale_id, f"b:{buyer}", quantity,
                                                p.buyer_limit):
        raise LotteryError("buyer_limit_reached", limit=p.buyer_limit, field="quantity")
    record(conn, actor or buyer, "presale.apply", f"presale:{presale_id}", None,
           {"application": number, "lot_id": lot_id, "quantity": quantity,
            "order": order_number})
    expires = now + timedelta(minutes=p.payment_minutes)
    return Applied(app_id, number, order_id, order_number, quantity * lot.amount,
                   lot.currency, expires)


def shown_state(state: str, order_state: str, expires_at: datetime, now: datetime) -> str:
    """An application's state as it is told: ``applied`` splits into waiting for payment,
    paid (in the draw) and lapsed."""
    if state != "applied":
        return state
    if order_state == "paid":
        return "paid"
    if order_state == "pending_payment" and expires_at >= now:
        return "pending_payment"
    return "void"

