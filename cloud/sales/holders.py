"""Holders at rest: their rows sealed on the way in, opened on the way out, and found by the
keyed hash of their document number (``cloud/core/seal.py``). The one place the sales area
reads or writes a holder's personal data."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from cloud.core.changes import next_values
from cloud.core.seal import Keyring, context, keyring_for
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
