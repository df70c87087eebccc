"""A buyer's own identity: the buyer names who they are (name and document) once, it is
verified as every person is (cloud/buyers/identities.py: once per person, reused), and the
result is sent to the buyer's mobile through the outbox. A verified buyer cannot name another
document; one not verified yet (refused, unavailable) may try again."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from cloud.buyers.accounts import profile
from cloud.buyers.errors import BuyerError
from cloud.buyers.identities import Contact, identity_state, person, request_verification
from cloud.buyers.tables import buyers
from cloud.core.audit import record
from sync.timeutil import utcnow


def verify_buyer(conn: sa.Connection, buyer_id: int, *, name: str, doc_type: str,
                 number: str, now: datetime | None = None) -> tuple[int, str]:
    """Ask for the buyer's own verification: (identity id, its state now)."""
    now = now or utcnow()
    me = profile(conn, buyer_id)
    if me.identity_id is not None and identity_state(conn, me.identity_id) == "verified":
        raise BuyerError("buyer_already_verified")
    identity_id = request_verification(conn, name=name, doc_type=doc_type, number=number,
                                       now=now, contact=Contact("sms", me.mobile, me.language))
    conn.execute(sa.update(buyers).where(buyers.c.id == buyer_id)
                 .values(identity_id=identity_id))
    record(conn, f"buyer:{buyer_id}", "buyer.identity", f"buyer:{buyer_id}",
           {"identity_id": me.identity_id}, {"identity_id": identity_id})
    return identity_id, identity_state(conn, identity_id)



def own_holder(conn: sa.Connection, buyer_id: int) -> tuple[str, str, str]:
    """The buyer as an order line's holder (name, document type, number), once their own
    identity is verified; ``buyer_not_verified`` before."""
    me = profile(conn, buyer_id)
    state = identity_state(conn, me.identity_id) if me.identity_id is not None else None
    if state != "verified":
        raise BuyerError("buyer_not_verified", state=state or "not asked")
    found = person(conn, me.identity_id)
    return found.name, found.doc_type, found.doc_number
