"""Companions (关联订票人): the people a buyer buys tickets for, each with a name and an identity
document, sealed at rest and found by the keyed hash of the number, as holders are
(cloud/sales/holders.py). Shown only masked (sync/identity.py's masks), to the buyer too.

A buyer keeps at most ``limit`` live companions (DEFAULT_LIMIT unless the hub's
``BUYER_COMPANION_LIMIT`` says otherwise). The count is the buyer row's ``live_companions``,
raised by one conditional UPDATE that refuses at the limit: two additions racing at the limit
are serialised on the buyer's row and the second is refused, on either database, without
reading first. Removing a companion only marks it removed: tickets bought for them stay
theirs, and the same document may be added again later.

A companion is a person to verify (cloud/buyers/identities.py): adding one asks for their
verification (once per person: a person already verified, through any account, is reused), and
a ticket is bought for them (:func:`holder`) only once that identity is verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.buyers.errors import BuyerError
from cloud.buyers.identities import identity_state, request_verification
from cloud.buyers.tables import buyers, companions
from cloud.core.audit import record
from cloud.core.seal import keyring_for
from sync.identity import DocumentError, mask_document, mask_name, normalize_document
from sync.timeutil import utcnow

DEFAULT_LIMIT = 10
MAX_NAME = 200


@dataclass(frozen=True)
class Companion:
    """A companion as shown: name and number masked."""

    id: int
    name: str
    doc_type: str
    doc_number: str
    identity_id: int | None
    added_at: datetime
    verification: str | None = None  # the identity's state: pending, verified, refused, …


def _context(buyer_id: int, doc_hash: str, field: str) -> str:
    return f"companions:{buyer_id}:{doc_hash}:{field}"


def _name(name: object) -> str:
    if not isinstance(name, str):
        raise BuyerError("companion_name_bad")
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise BuyerError("companion_name_bad")
    return name


def add_companion(conn: sa.Connection, buyer_id: int, *, name: str, doc_type: str,
                  doc_number: str, limit: int = DEFAULT_LIMIT,
                  now: datetime | None = None) -> Companion:
    """Add a companion to the buyer's list, within ``limit``; the companion, masked."""
    name = _name(name)
    try:
        number = normalize_document(doc_type, doc_number)
    except DocumentError as e:
        raise BuyerError(f"document_{e.code}", str(e)) from None
    now = now or utcnow()
    counted = conn.execute(sa.update(buyers).where(buyers.c.id == buyer_id,
                                                   buyers.c.live_companions < limit)
                           .values(live_companions=buyers.c.live_companions + 1)).rowcount
    if not counted:
        raise BuyerError("companion_limit", limit=limit)
    ring = keyring_for(conn)
    # the buyer's row is held from here to the commit: no other addition of theirs runs
    # between this read and the insert
    if conn.execute(sa.select(companions.c.id).where(
            companions.c.buyer_id == buyer_id, companions.c.removed_at.is_(None),
            companions.c.doc_hash.in_(ring.doc_hashes(number)))).first() is not None:
        _uncount(conn, buyer_id)  # the refusal leaves the count right in any transaction
        raise BuyerError("companion_exists")
    doc_hash = ring.doc_hash(number)
    identity_id = request_verification(conn, name=name, doc_type=doc_type, number=number,
                                       now=now)
    companion_id = conn.execute(sa.insert(companions).values(
        buyer_id=buyer_id, doc_type=doc_type, doc_hash=doc_hash, added_at=now,
        identity_id=identity_id,
        sealed_name=ring.seal(name, _context(buyer_id, doc_hash, "name")),
        sealed_doc_number=ring.seal(number, _context(buyer_id, doc_hash, "doc_number")))
    ).inserted_primary_key[0]
    record(conn, f"buyer:{buyer_id}", "buyer.companion.add", f"companion:{companion_id}", None,
           {"name": mask_name(name), "doc_type": doc_type, "doc_number": mask_document(number)})
    return Companion(companion_id, mask_name(name), doc_type, mask_document(number),
                     identity_id, now, identity_state(conn, identity_id))


def _uncount(conn: sa.Connection, buyer_id: int) -> None:
    conn.execute(sa.update(buyers).where(buyers.c.id == buyer_id)
                 .values(live_companions=buyers.c.live_companions - 1))


def opened(conn: sa.Connection, row) -> tuple[str, str]:
    """A companion row's name and document number in clear (for a sale naming them as the
    holder, never for display)."""
    ring = keyring_for(conn)
    return (ring.open(row.sealed_name, _context(row.buyer_id, row.doc_hash, "name")),
            ring.open(row.sealed_doc_number, _context(row.buyer_id, row.doc_hash, "doc_number")))


def _shown(conn: sa.Connection, row) -> Companion:
    name, number = opened(conn, row)
    state = identity_state(conn, row.identity_id) if row.identity_id is not None else None
    return Companion(row.id, mask_name(name), row.doc_type, mask_document(number),
                     row.identity_id, row.added_at, state)


def list_companions(conn: sa.Connection, buyer_id: int) -> list[Companion]:
    """The buyer's live companions, in the order added, masked."""
    rows = conn.execute(sa.select(companions).where(
        companions.c.buyer_id == buyer_id, companions.c.removed_at.is_(None))
        .order_by(companions.c.id)).all()
    return [_shown(conn, r) for r in rows]


def companion_row(conn: sa.Connection, buyer_id: int, companion_id: int):
    """One live companion's row of the buyer's, or ``unknown_companion``."""
    row = conn.execute(sa.select(companions).where(
        companions.c.id == companion_id, companions.c.buyer_id == buyer_id,
        companions.c.removed_at.is_(None))).first()
    if row is None:
        raise BuyerError("unknown_companion", companion_id=companion_id)
    return row


def holder(conn: sa.Connection, buyer_id: int, companion_id: int) -> tuple[str, str, str]:
    """A live, verified companion of the buyer's as an order line's holder (name, document
    type, number): the sales area's limits per holder and per document then count them as any
    holder, whichever account buys for them. ``companion_not_verified`` until their identity
    is verified."""
    row = companion_row(conn, buyer_id, companion_id)
    state = identity_state(conn, row.identity_id) if row.identity_id is not None else None
    if state != "verified":
        raise BuyerError("companion_not_verified", companion_id=companion_id,
                         state=state or "not asked")
    name, number = opened(conn, row)
    return name, row.doc_type, number


def remove_companion(conn: sa.Connection, buyer_id: int, companion_id: int,
                     now: datetime | None = None) -> None:
    """Take a companion off the buyer's list (marked removed; tickets already bought stay)."""
    now = now or utcnow()
    removed = conn.execute(sa.update(companions).where(
        companions.c.id == companion_id, companions.c.buyer_id == buyer_id,
        companions.c.removed_at.is_(None)).values(removed_at=now)).rowcount
    if not removed:
        raise BuyerError("unknown_companion", companion_id=companion_id)
    _uncount(conn, buyer_id)
    record(conn, f"buyer:{buyer_id}", "buyer.companion.remove", f"companion:{companion_id}")
