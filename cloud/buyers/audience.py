"""Who holds a ticket for a session, as addresses a send task can be written to (issue 16 §5:
"a message to all holders of a session, e.g. gate changes").

The messaging area may not import buyers, so it cannot know these addresses itself: this
function is handed to it by the app's composer (``cloud/app.py``) as the provider of its
``session_holders`` audience (``cloud/messaging/audiences.py``).

The audience of a session is, for every live ticket of it (``issued``, of an order paid or
partly refunded: a refunded or voided ticket, or an order never paid, is nobody's any more;
a multi-session ticket whose scope names the session counts too):

- the buyer whose account bought it (``orders.buyer`` = ``buyer:<id>``);
- its holder, when the holder has an account of their own whose identity is verified as the
  holder's document (a companion who registered): companions themselves have no address.

Disabled accounts are left out (as for ticket delivery). Each address once, in the order of
the accounts' ids; none for a channel the accounts have no address on (``wechat``).
"""

from __future__ import annotations

import sqlalchemy as sa

from cloud.buyers.accounts import opened_contacts
from cloud.buyers.tables import buyers, identities
from cloud.core.seal import keyring_for
from cloud.sales.tables import holders, orders, tickets

LIVE_ORDERS = ("paid", "partially_refunded")
BUYER = "buyer:"


def _live_tickets(conn: sa.Connection, session_id: int) -> list[sa.Row]:
    """The buyer and the holder of each live ticket for the session."""
    rows = conn.execute(
        sa.select(tickets.c.session_id, tickets.c.kind, tickets.c.scope, orders.c.buyer,
                  holders.c.doc_type, holders.c.doc_hash)
        .join(orders, orders.c.id == tickets.c.order_id)
        .outerjoin(holders, holders.c.id == tickets.c.holder_id)
        .where(tickets.c.state == "issued", orders.c.state.in_(LIVE_ORDERS),
               sa.or_(tickets.c.session_id == session_id, tickets.c.kind == "sessions"))
    ).all()
    return [r for r in rows if r.session_id == session_id
            or (r.kind == "sessions" and session_id in (r.scope or ()))]


def _buyer_ids(conn: sa.Connection, live: list[sa.Row]) -> set[int]:
    ids = {int(b.removeprefix(BUYER)) for b in (r.buyer for r in live)
           if b and b.startswith(BUYER) and b.removeprefix(BUYER).isdigit()}
    documents = {(r.doc_type, r.doc_hash) for r in live if r.doc_hash is not None}
    if documents:
        # holders with an account of their own, verified as that document
        ids |= set(conn.execute(
            sa.select(buyers.c.id).join(identities, identities.c.id == buyers.c.identity_id)
            .where(identities.c.state == "verified",
                   sa.tuple_(identities.c.doc_type, identities.c.doc_hash).in_(
                       sorted(documents)))).scalars())
    return ids


def session_audience(conn: sa.Connection, session_id: int, channel: str) -> list[str]:
    """The addresses on ``channel`` (``sms``: mobile numbers, ``email``: e-mail addresses) of
    the people holding a live ticket for the session (see the module), each once."""
    if channel not in ("sms", "email"):
        return []
    ids = _buyer_ids(conn, _live_tickets(conn, session_id))
    if not ids:
        return []
    ring = keyring_for(conn)
    found: list[str] = []
    for row in conn.execute(sa.select(buyers).where(buyers.c.id.in_(sorted(ids)),
                                                    buyers.c.state == "active")
                            .order_by(buyers.c.id)):
        mobile, email = opened_contacts(ring, row)
        address = mobile if channel == "sms" else email
        if address:
            found.append(address)
    return list(dict.fromkeys(found))
