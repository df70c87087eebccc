"""Tickets delivered by link: a paid order's buyer gets, for each ticket, a message with a
link to a page that shows the ticket's QR code (``/t/<token>``, public, no sign-in).

The token is 32 random bytes: unguessable, and worth nothing once the ticket is refunded or
void (the page then says so and shows no code). The hub keeps only its SHA-256
(``ticket_links``); the token itself travels sealed in the outbox and then in the buyer's
message. The link page shows the holder masked, the session, zone, seat, gate and entry rules.
A buyer who lost the message can have it sent again to where it went, a few times an hour.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from cloud.catalog.tables import events, gate_zones, gates, seats, sessions, venues, zones
from cloud.core import audit, rate_limits
from cloud.core.outbox import address_hash, enqueue, opened, outbox
from cloud.messaging.errors import MessagingError
from cloud.messaging.tables import ticket_links
from cloud.sales.holders import holder
from cloud.sales.tables import orders, tickets
from sync.identity import mask_document, mask_name
from sync.timeutil import utcnow

REDELIVERY_LIMIT = 3
REDELIVERY_WINDOW = timedelta(hours=1)
DELIVERABLE = ("paid", "partially_refunded")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _seat_label(conn: sa.Connection, seat_id: int | None) -> str:
    if seat_id is None:
        return ""
    s = conn.execute(sa.select(seats.c.level, seats.c.row, seats.c.number)
                     .where(seats.c.id == seat_id)).one()
    return f"{s.level}-{s.row}-{s.number}"


def _session_words(conn: sa.Connection, session_id: int | None) -> str:
    if session_id is None:
        return ""
    s = conn.execute(sa.select(events.c.name.label("event"), sessions.c.name,
                               sessions.c.starts_at).join_from(sessions, events)
                     .where(sessions.c.id == session_id)).one()
    return f"{s.event} — {s.name} {s.starts_at:%Y-%m-%d %H:%M} UTC"


def deliver_order(conn: sa.Connection, order_id: int, *, sms_to: str | None = None,
                  email_to: str | None = None, language: str = "zh",
                  now: datetime | None = None) -> list[int]:
    """Write, in the caller's transaction, one message per valid ticket of a paid order and
    per address given, each with a new link to its ticket. Called again for the same order and
    addresses (a replayed capture), it writes nothing: the message ids written."""
    now = now or utcnow()
    if not (sms_to or email_to):
        raise MessagingError("no_contact")
    o = conn.execute(sa.select(orders.c.state).where(orders.c.id == order_id)).first()
    if o is None or o.state not in DELIVERABLE:
        raise MessagingError("order_not_paid", order_id=order_id,
                             state=o.state if o else "unknown")
    written: list[int] = []
    for t in conn.execute(sa.select(tickets.c.id, tickets.c.session_id, tickets.c.seat_id)
                          .where(tickets.c.order_id == order_id, tickets.c.state == "issued")
                          .order_by(tickets.c.id)).all():
        token = secrets.token_urlsafe(32)
        params = {"session": _session_words(conn, t.session_id),
                  "seat": _seat_label(conn, t.seat_id), "path": f"/t/{token}"}
        ids = [enqueue(conn, kind="ticket_delivery", channel=channel, to=to, params=params,
                       language=language, now=now,
                       dedupe_key=f"ticket:{t.id}:delivery:{address_hash(conn, channel, to)}")
               for channel, to in (("sms", sms_to), ("email", email_to)) if to]
        ids = [i for i in ids if i is not None]
        if ids:
            conn.execute(sa.insert(ticket_links).values(
                token_hash=token_hash(token), ticket_id=t.id, order_id=order_id,
                message_id=ids[0], created_at=now))
            written += ids
    return written


@dataclass(frozen=True)
class TicketView:
    """What a ticket link shows: the code only while the ticket is valid."""

    number: str
    state: str
    valid: bool
    code: str | None
    holder_name: str | None
    holder_document: str | None
    event: str
    session: str
    starts_at: datetime | None
    gates_open_at: datetime | None
    venue: str
    timezone: str
    zone: str
    seat: str
    gates: list[str]
    real_name: bool


def _link(conn: sa.Connection, token: str):
    if not token or len(token) > 100:
        raise MessagingError("unknown_ticket_link")
    row = conn.execute(sa.select(ticket_links).where(
        ticket_links.c.token_hash == token_hash(token))).first()
    if row is None:
        raise MessagingError("unknown_ticket_link")
    return row


def ticket_by_link(conn: sa.Connection, token: str) -> TicketView:
    """The ticket a link names (``unknown_ticket_link`` for any token the hub did not make)."""
    link = _link(conn, token)
    t = conn.execute(sa.select(tickets).where(tickets.c.id == link.ticket_id)).one()
    s = conn.execute(sa.select(sessions, events.c.name.label("event"),
                               venues.c.name.label("venue"), venues.c.timezone)
                     .join_from(sessions, events).join(venues, venues.c.id == sessions.c.venue_id)
                     .where(sessions.c.id == t.session_id)).first()
    zone = conn.execute(sa.select(zones.c.name).where(zones.c.id == t.zone_id)).scalar() or ""
    gate_names = [g for (g,) in conn.execute(
        sa.select(gates.c.name).join_from(gate_zones, gates)
        .where(gate_zones.c.zone_id == t.zone_id).order_by(gates.c.code))] if t.zone_id else []
    h = holder(conn, t.holder_id)
    valid = t.state == "issued"
    return TicketView(
        t.number, t.state, valid, t.code if valid else None,
        mask_name(h.name) if h else None, mask_document(h.doc_number) if h else None,
        s.event if s else "", s.name if s else "", s.starts_at if s else None,
        s.gates_open_at if s else None, s.venue if s else "",
        s.timezone if s else "Asia/Shanghai", zone, _seat_label(conn, t.seat_id), gate_names,
        bool(s.real_name) if s else False)


def redeliver(conn: sa.Connection, token: str, now: datetime | None = None) -> int:
    """Send a ticket's link again to where it went, at most :data:`REDELIVERY_LIMIT` times an
    hour per ticket (``too_many_redeliveries``); only a valid ticket's. The new message id."""
    now = now or utcnow()
    link = _link(conn, token)
    view = ticket_by_link(conn, token)
    if not view.valid:
        raise MessagingError("unknown_ticket_link")
    if rate_limits.hit(conn, f"ticket-redelivery:{link.ticket_id}", REDELIVERY_WINDOW,
                       now) > REDELIVERY_LIMIT:
        raise MessagingError("too_many_redeliveries", limit=REDELIVERY_LIMIT)
    first = conn.execute(sa.select(outbox).where(outbox.c.id == link.message_id)).one()
    to, params = opened(conn, first)
    new_id = enqueue(conn, kind=first.kind, channel=first.channel, to=to, params=params,
                     language=first.language, now=now)
    audit.record(conn, "public:ticket-link", "messages.redeliver", f"ticket:{link.ticket_id}",
                 None, {"message": new_id})
    return new_id
