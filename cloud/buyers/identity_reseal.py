"""A data key rotation's pass over identities (``wicket-hub rotate-data-key``): each row's
name and number sealed again, its document hash made again, and its photo sealed again, under
the current key. Rows already under it are left alone, so a rotation cut short starts again
safely (as ``cloud/sales/holders.py`` does for holders)."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.buyers.identities import open_person
from cloud.buyers.tables import identities, identity_photos
from cloud.core.seal import context, key_id_of, keyring_for


def reseal_identities(conn: sa.Connection, after_id: int,
                      limit: int) -> tuple[int | None, int, int]:
    """One batch: the identities after ``after_id`` (at most ``limit``); the last id looked at
    (None when there are no more), how many rows were looked at and how many changed."""
    ring = keyring_for(conn)
    rows = conn.execute(sa.select(identities).where(identities.c.id > after_id)
                        .order_by(identities.c.id).limit(limit)).all()
    if not rows:
        return None, 0, 0
    changed = 0
    for r in rows:
        if any(key_id_of(v) != ring.current_id for v in (r.sealed_name, r.sealed_doc_number)):
            p = open_person(ring, r)
            conn.execute(sa.update(identities).where(identities.c.id == r.id).values(
                sealed_name=ring.seal(p.name, context("identities", r.id, "name")),
                sealed_doc_number=ring.seal(p.doc_number,
                                            context("identities", r.id, "doc_number")),
                doc_hash=ring.doc_hash(p.doc_number)))
            changed += 1
    photos = conn.execute(sa.select(identity_photos.c.identity_id, identity_photos.c.sealed_photo)
                          .where(identity_photos.c.identity_id.in_([r.id for r in rows]))).all()
    for identity_id, sealed in photos:
        if key_id_of(sealed) != ring.current_id:
            where = context("identity_photos", identity_id, "photo")
            conn.execute(sa.update(identity_photos).where(
                identity_photos.c.identity_id == identity_id).values(
                sealed_photo=ring.seal_bytes(ring.open_bytes(sealed, where), where)))
            changed += 1
    return rows[-1].id, len(rows), changed


def count_identities(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(identities)).scalar_one()
