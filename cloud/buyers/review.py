"""Manual review of the documents no service checks (passports, the travel permits, the
foreign permanent resident card): the buyer sends a photo of the document
(:func:`upload_photo`: size and type checked by content, sealed under the data key), a person
with ``buyers.review_identity`` approves or refuses it with a reason (:func:`decide_review`,
audited), and the photo is deleted :data:`KEEP_DAYS` days after the decision
(:func:`delete_decided_photos`, a periodic task of the worker).

A buyer refused by a reviewer may send a new photo: the identity is back in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.buyers.identities import open_person, record_change
from cloud.buyers.identity_errors import IdentityError
from cloud.buyers.photos import MAX_BYTES, checked_photo
from cloud.buyers.tables import identities, identity_photos
from cloud.core import audit
from cloud.core.seal import context, keyring_for
from sync.identity import mask_document, mask_name
from sync.timeutil import utcnow

KEEP_DAYS = 30
MIN_REASON, MAX_REASON = 3, 500


@dataclass(frozen=True)
class Waiting:
    """A line of the review queue (masked)."""

    id: int
    doc_type: str
    name: str
    number: str
    uploaded_at: datetime


def _photo_context(identity_id: int) -> str:
    return context("identity_photos", identity_id, "photo")


def upload_photo(conn: sa.Connection, identity_id: int, data: bytes, *, actor: str,
                 now: datetime | None = None, max_bytes: int = MAX_BYTES,
                 declared: str | None = None) -> None:
    """Keep the photo of an identity waiting for review (or refused by a reviewer: it waits
    again), replacing one sent before; refusals say what is wrong with it (``declared``, the
    media type the upload said it is, must then be what it is)."""
    now = now or utcnow()
    row = conn.execute(sa.select(identities).where(identities.c.id == identity_id)
                       .with_for_update()).first()
    if row is None:
        raise IdentityError("unknown_identity", identity_id=identity_id)
    if not (row.state == "review" or (row.state == "refused" and row.refusal == "review")):
        raise IdentityError("identity_not_in_review", identity_id=identity_id, state=row.state)
    media_type = checked_photo(data, max_bytes, declared)
    values = {"sealed_photo": keyring_for(conn).seal_bytes(data, _photo_context(identity_id)),
              "media_type": media_type, "size": len(data), "uploaded_at": now,
              "decided_at": None}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(identity_photos).values(identity_id=identity_id, **values)
                 .on_conflict_do_update(index_elements=["identity_id"], set_=values))
    if row.state != "review":
        conn.execute(sa.update(identities).where(identities.c.id == identity_id).values(
            state="review", refusal=None, updated_at=now))
    audit.record(conn, actor, "identity.photo_uploaded", f"identity:{identity_id}",
                 {"state": row.state}, {"state": "review", "media_type": media_type,
                                        "size": len(data)})


def review_queue(conn: sa.Connection, limit: int = 100) -> list[Waiting]:
    """Identities waiting for a reviewer with their photo, oldest upload first (masked)."""
    ring = keyring_for(conn)
    rows = conn.execute(sa.select(identities, identity_photos.c.uploaded_at)
                        .join(identity_photos, identity_photos.c.identity_id == identities.c.id)
                        .where(identities.c.state == "review")
                        .order_by(identity_photos.c.uploaded_at, identities.c.id)
                        .limit(limit)).all()
    out = []
    for r in rows:
        p = open_person(ring, r)
        out.append(Waiting(r.id, r.doc_type, mask_name(p.name), mask_document(p.doc_number),
                           r.uploaded_at))
    return out


def review_case(conn: sa.Connection, identity_id: int, actor: str) -> dict[str, Any]:
    """What a reviewer compares with the photo: the name and number in full (the opening is
    audited), the state and the photo's facts."""
    row = conn.execute(sa.select(identities).where(identities.c.id == identity_id)).first()
    if row is None:
        raise IdentityError("unknown_identity", identity_id=identity_id)
    photo = conn.execute(sa.select(identity_photos.c.media_type, identity_photos.c.size,
                                   identity_photos.c.uploaded_at).where(
        identity_photos.c.identity_id == identity_id)).first()
    audit.record(conn, actor, "identity.case_opened", f"identity:{identity_id}")
    return {"person": open_person(keyring_for(conn), row), "row": row, "photo": photo}


def photo(conn: sa.Connection, identity_id: int) -> tuple[str, bytes] | None:
    """The photo's media type and bytes, opened; None when there is none (or it was deleted)."""
    row = conn.execute(sa.select(identity_photos).where(
        identity_photos.c.identity_id == identity_id)).first()
    if row is None:
        return None
    return row.media_type, keyring_for(conn).open_bytes(row.sealed_photo,
                                                        _photo_context(identity_id))


def decide_review(conn: sa.Connection, identity_id: int, decision: str, *, actor: str,
                  reason: str = "", now: datetime | None = None) -> str:
    """Approve (``verified``) or refuse (``refused``, with a reason of
    :data:`MIN_REASON` to :data:`MAX_REASON` characters) an identity waiting for review with
    its photo; audited. The photo's retention period starts now. The new state."""
    now = now or utcnow()
    if decision not in ("approve", "refuse"):
        raise ValueError(f"unknown decision {decision!r}")
    reason = " ".join((reason or "").split())
    if decision == "refuse" and not MIN_REASON <= len(reason) <= MAX_REASON:
        raise IdentityError("review_reason_required", low=MIN_REASON, high=MAX_REASON)
    row = conn.execute(sa.select(identities).where(identities.c.id == identity_id)
                       .with_for_update()).first()
    if row is None:
        raise IdentityError("unknown_identity", identity_id=identity_id)
    if row.state != "review":
        raise IdentityError("identity_not_in_review", identity_id=identity_id, state=row.state)
    decided = conn.execute(sa.update(identity_photos).where(
        identity_photos.c.identity_id == identity_id).values(decided_at=now)).rowcount
    if not decided:
        raise IdentityError("photo_missing", identity_id=identity_id)
    state = "verified" if decision == "approve" else "refused"
    conn.execute(sa.update(identities).where(identities.c.id == identity_id).values(
        state=state, refusal=None if state == "verified" else "review", decided_by=actor,
        decision_note=reason[:MAX_REASON] or None, updated_at=now,
        verified_at=now if state == "verified" else None))
    action = "identity.review_approved" if state == "verified" else "identity.review_refused"
    record_change(conn, identity_id, actor, action, "review", state, reason=reason or None)
    return state


def delete_decided_photos(conn: sa.Connection, now: datetime | None = None,
                          keep_days: float = KEEP_DAYS) -> int:
    """Delete the photos whose decision is older than ``keep_days`` (each audited); how many."""
    now = now or utcnow()
    ids = conn.execute(sa.select(identity_photos.c.identity_id).where(
        identity_photos.c.decided_at <= now - timedelta(days=keep_days))).scalars().all()
    if ids:
        conn.execute(sa.delete(identity_photos).where(identity_photos.c.identity_id.in_(ids)))
        for identity_id in ids:
            audit.record(conn, audit.SYSTEM, "identity.photo_deleted", f"identity:{identity_id}",
                         None, {"after_days": keep_days})
    return len(ids)
