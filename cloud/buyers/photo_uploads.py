"""A buyer sends the photo of a document for review (cloud/buyers/review.py): of their own
identity, or of one of their live companions'. Whose photo it is comes from the buyer's own
rows, never from the request: another buyer's companion, or one removed, is
``unknown_companion`` (404), as for every other call about companions, so that a refusal never
says whether someone else's companion exists. The identity must be waiting for a review (a
document no service checks), or refused by a reviewer (a new photo puts it back in the queue);
the upload is audited by the review rule, with the buyer as its actor."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from cloud.buyers.companions import companion_row
from cloud.buyers.errors import BuyerError
from cloud.buyers.identities import identity_state
from cloud.buyers.photos import MAX_BYTES
from cloud.buyers.review import upload_photo
from cloud.buyers.tables import buyers


def _identity_of(conn: sa.Connection, buyer_id: int, companion_id: int | None) -> int:
    if companion_id is None:
        identity_id = conn.execute(sa.select(buyers.c.identity_id).where(
            buyers.c.id == buyer_id)).scalar()
    else:
        identity_id = companion_row(conn, buyer_id, companion_id).identity_id
    if identity_id is None:
        raise BuyerError("identity_not_named")
    return identity_id


def send_photo(conn: sa.Connection, buyer_id: int, data: bytes, *, declared: str,
               companion_id: int | None = None, now: datetime | None = None,
               max_bytes: int = MAX_BYTES) -> tuple[int, str]:
    """Keep the photo (of the buyer's own identity, or of their companion ``companion_id``'s)
    for review; the identity's id and its state after (``review``). ``declared`` is the media
    type the upload said it is: the photo must be that type."""
    identity_id = _identity_of(conn, buyer_id, companion_id)
    upload_photo(conn, identity_id, data, actor=f"buyer:{buyer_id}", now=now,
                 max_bytes=max_bytes, declared=declared)
    return identity_id, identity_state(conn, identity_id)
