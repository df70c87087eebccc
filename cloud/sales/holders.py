"""Holders at rest: their rows sealed on the way in, opened on the way out, and found by the
keyed hash of their document number (``cloud/core/seal.py``). The one place the sales area
reads or writes a holder's personal data."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from cloud.core.changes import next_values
from cloud.core.seal import Keyring, context, key_id_of, keyring_for
from cloud.sales.tables import holders


@dataclass(frozen=True)
class Holder:
    """A holder opened: shown only through ``sync.identity``'s masks."""

    id: int
    name: str
    doc_type: str
    doc_number: str


def sealed_row(ring: Keyring, holder_id: int, name: str, doc_type: str, number: str) -> dict:
    """The row of a holder (``number`` already normalised), sealed for its id."""
    return {"id": holder_id, "doc_type": doc_type, "doc_hash": ring.doc_hash(number),
            "sealed_name": ring.seal(name, context("holders", holder_id, "name")),
            "sealed_doc_number": ring.seal(number, context("holders", holder_id, "doc_number"))}


def add_holders(conn: sa.Connection, people: list[tuple[str, str, str]]) -> list[int]:
    """Write holders (name, document type, normalised number), sealed; their ids in order."""
    if not people:
        return []
    ring = keyring_for(conn)
    ids = list(next_values(conn, "holder", len(people)))
    conn.execute(sa.insert(holders), [sealed_row(ring, hid, *p)
                                      for hid, p in zip(ids, people, strict=True)])
    return ids


def open_holder(ring: Keyring, row) -> Holder:
    """A holder row opened with the data key."""
    return Holder(row.id, ring.open(row.sealed_name, context("holders", row.id, "name")),
                  row.doc_type,
                  ring.open(row.sealed_doc_number, context("holders", row.id, "doc_number")))


def holder(conn: sa.Connection, holder_id: int | None) -> Holder | None:
    """One holder opened, or None."""
    if holder_id is None:
        return None
    row = conn.execute(sa.select(holders).where(holders.c.id == holder_id)).first()
    return open_holder(keyring_for(conn), row) if row is not None else None


def document_match(conn: sa.Connection, number: str) -> sa.ColumnElement[bool]:
    """The condition finding holders of a normalised document number: its keyed hash under
    every key in the data key file, so a lookup in the middle of a rotation finds both."""
    return holders.c.doc_hash.in_(keyring_for(conn).doc_hashes(number))


def stale_holder(ring: Keyring, row) -> bool:
    """Whether a holder row still has a value sealed with another key than the current."""
    return any(key_id_of(v) != ring.current_id for v in (row.sealed_name,
                                                          row.sealed_doc_number))


def reseal_holders(conn: sa.Connection, after_id: int, limit: int) -> tuple[int | None, int, int]:
    """One batch of a data key rotation: the holders after ``after_id`` (at most ``limit``)
    sealed again, and their document hash made again, under the current key. Returns the
    last id looked at (None when there are no more), how many rows it looked at and how
    many changed. Rows already
    under the current key are left alone, so a rotation cut short starts again safely."""
    ring = keyring_for(conn)
    rows = conn.execute(sa.select(holders).where(holders.c.id > after_id)
                        .order_by(holders.c.id).limit(limit)).all()
    if not rows:
        return None, 0, 0
    stale = [open_holder(ring, r) for r in rows if stale_holder(ring, r)]
    if stale:
        conn.execute(sa.update(holders).where(holders.c.id == sa.bindparam("hid")).values(
            sealed_name=sa.bindparam("sn"), sealed_doc_number=sa.bindparam("sd"),
            doc_hash=sa.bindparam("dh")), [
            {"hid": h.id, "sn": ring.seal(h.name, context("holders", h.id, "name")),
             "sd": ring.seal(h.doc_number, context("holders", h.id, "doc_number")),
             "dh": ring.doc_hash(h.doc_number)} for h in stale])
    return rows[-1].id, len(rows), len(stale)


def count_holders(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(holders)).scalar_one()
