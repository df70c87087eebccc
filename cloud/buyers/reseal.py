"""The buyers' part of a data key rotation (``wicket-hub rotate-data-key``): each batch seals
the buyers' numbers and e-mail addresses, and the companions' names and documents, again under
the current key, with their keyed hashes made again under it (the hash is part of what a sealed
value belongs to). As :func:`cloud.sales.holders.reseal_holders`, a batch answers the last id it
looked at (None at the end), how many rows it looked at and how many it changed; rows already
under the current key are left alone, so a rotation cut short starts again safely."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.buyers.tables import buyers, companions
from cloud.core.seal import key_id_of, keyring_for


def _batch(conn: sa.Connection, table: sa.Table, after_id: int, limit: int) -> list[sa.Row]:
    return conn.execute(sa.select(table).where(table.c.id > after_id)
                        .order_by(table.c.id).limit(limit)).all()


def reseal_buyers(conn: sa.Connection, after_id: int, limit: int) -> tuple[int | None, int, int]:
    ring = keyring_for(conn)
    rows = _batch(conn, buyers, after_id, limit)
    if not rows:
        return None, 0, 0
    changed = 0
    for r in rows:
        if key_id_of(r.sealed_mobile) == ring.current_id and (
                r.sealed_email is None or key_id_of(r.sealed_email) == ring.current_id):
            continue
        number = ring.open(r.sealed_mobile, f"buyers:mobile:{r.mobile_hash}")
        mobile_hash = ring.doc_hash(f"mobile:{number}")
        values = {"mobile_hash": mobile_hash,
                  "sealed_mobile": ring.seal(number, f"buyers:mobile:{mobile_hash}")}
        if r.sealed_email is not None:
            email = ring.open(r.sealed_email, f"buyers:email:{r.email_hash}")
            email_hash = ring.doc_hash(f"email:{email}")
            values |= {"email_hash": email_hash,
                       "sealed_email": ring.seal(email, f"buyers:email:{email_hash}")}
        conn.execute(sa.update(buyers).where(buyers.c.id == r.id).values(values))
        changed += 1
    return rows[-1].id, len(rows), changed


def reseal_companions(conn: sa.Connection, after_id: int,
                      limit: int) -> tuple[int | None, int, int]:
    ring = keyring_for(conn)
    rows = _batch(conn, companions, after_id, limit)
    if not rows:
        return None, 0, 0
    changed = 0
    for r in rows:
        if key_id_of(r.sealed_name) == ring.current_id \
                and key_id_of(r.sealed_doc_number) == ring.current_id:
            continue
        where = f"companions:{r.buyer_id}:{r.doc_hash}"
        name, number = ring.open(r.sealed_name, f"{where}:name"), \
            ring.open(r.sealed_doc_number, f"{where}:doc_number")
        doc_hash = ring.doc_hash(number)
        where = f"companions:{r.buyer_id}:{doc_hash}"
        conn.execute(sa.update(companions).where(companions.c.id == r.id).values(
            doc_hash=doc_hash, sealed_name=ring.seal(name, f"{where}:name"),
            sealed_doc_number=ring.seal(number, f"{where}:doc_number")))
        changed += 1
    return rows[-1].id, len(rows), changed


def count_sealed(conn: sa.Connection) -> int:
    """How many rows a pass looks at."""
    return sum(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
               for t in (buyers, companions))
