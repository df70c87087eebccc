"""Holders' names and document numbers sealed at rest: the holders table keeps them sealed
under the data key (cloud/core/seal.py) with a keyed hash of the number for lookups, and the
change log's holder records carry them sealed. Clear rows already there are sealed here, so
upgrading needs the data key file (``--data-key`` / $WICKET_HUB_DATA_KEY, made by
``wicket-hub init``); the clear columns and their index are dropped. SQLite files zero what
they free from now on (``secure_delete``, set on every connection), so no clear value stays
behind in a free page.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from cloud.core.seal import PERSONAL_FIELDS, context, key_id_of, keyring_for

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BATCH = 1000
_holders = sa.table("holders", sa.column("id", sa.Integer), sa.column("name", sa.String),
                    sa.column("doc_type", sa.String), sa.column("doc_number", sa.String),
                    sa.column("sealed_name", sa.Text), sa.column("sealed_doc_number", sa.Text),
                    sa.column("doc_hash", sa.String))
_log = sa.table("change_log", sa.column("seq", sa.BigInteger), sa.column("kind", sa.String),
                sa.column("record", sa.JSON))
_counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))


def _batches(conn, query, key):
    """Rows of ``query`` in batches ordered by ``key``, each batch read after the last."""
    last = None
    while True:
        q = query if last is None else query.where(key > last)
        rows = conn.execute(q.order_by(key).limit(BATCH)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _seal_holders(conn) -> None:
    ring = None
    query = sa.select(_holders.c.id, _holders.c.name, _holders.c.doc_number)
    for rows in _batches(conn, query, _holders.c.id):
        ring = ring or keyring_for(conn)
        conn.execute(sa.update(_holders).where(_holders.c.id == sa.bindparam("hid")).values(
            sealed_name=sa.bindparam("sn"), sealed_doc_number=sa.bindparam("sd"),
            doc_hash=sa.bindparam("dh")), [
            {"hid": r.id, "sn": ring.seal(r.name, context("holders", r.id, "name")),
             "sd": ring.seal(r.doc_number, context("holders", r.id, "doc_number")),
             "dh": ring.doc_hash(r.doc_number)} for r in rows])


def _change_records(conn, change):
    """Apply ``change(ring, seq, record)`` to every holder record of the change log."""
    ring = None
    query = sa.select(_log.c.seq, _log.c.record).where(_log.c.kind.in_(list(PERSONAL_FIELDS)))
    for rows in _batches(conn, query, _log.c.seq):
        ring = ring or keyring_for(conn)
        conn.execute(sa.update(_log).where(_log.c.seq == sa.bindparam("s")).values(
            record=sa.bindparam("r", type_=sa.JSON)),
            [{"s": r.seq, "r": change(ring, r.seq, r.record)} for r in rows])


def _seal_record(ring, seq, record):
    return {**record, **{f: ring.seal(record[f], context("change_log", seq, f))
                         for f in PERSONAL_FIELDS[record["type"]]
                         if isinstance(record.get(f), str) and key_id_of(record[f]) is None}}


def _open_record(ring, seq, record):
    return {**record, **{f: ring.open(record[f], context("change_log", seq, f))
                         for f in PERSONAL_FIELDS[record["type"]]
                         if key_id_of(record.get(f)) is not None}}


def _drop_columns(table: str, columns: list[str]) -> None:
    for column in columns:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)


def _add_text(name: str, sqlite: bool, length: int | None = None) -> None:
    kind = sa.String(length) if length else sa.Text()
    # SQLite adds a NOT NULL column only with a default; PostgreSQL gets NOT NULL when filled
    op.add_column("holders", sa.Column(name, kind, nullable=not sqlite,
                                       server_default="" if sqlite else None))


def upgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    for name, length in (("sealed_name", None), ("sealed_doc_number", None), ("doc_hash", 64)):
        _add_text(name, sqlite, length)
    top = conn.execute(sa.select(sa.func.coalesce(sa.func.max(_holders.c.id), 0))).scalar_one()
    op.bulk_insert(_counters, [{"name": "holder", "value": top}])
    _seal_holders(conn)
    _change_records(conn, _seal_record)
    op.drop_index("ix_holders_doc_number", table_name="holders")
    _drop_columns("holders", ["name", "doc_number"])
    if not sqlite:
        for name in ("sealed_name", "sealed_doc_number", "doc_hash"):
            op.alter_column("holders", name, nullable=False)
    op.create_index("ix_holders_doc_hash", "holders", ["doc_hash"])


def downgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    _add_text("name", sqlite, 200)
    _add_text("doc_number", sqlite, 40)
    ring = None
    query = sa.select(_holders.c.id, _holders.c.sealed_name, _holders.c.sealed_doc_number)
    for rows in _batches(conn, query, _holders.c.id):
        ring = ring or keyring_for(conn)
        conn.execute(sa.update(_holders).where(_holders.c.id == sa.bindparam("hid")).values(
            name=sa.bindparam("n"), doc_number=sa.bindparam("d")), [
            {"hid": r.id, "n": ring.open(r.sealed_name, context("holders", r.id, "name")),
             "d": ring.open(r.sealed_doc_number, context("holders", r.id, "doc_number"))}
            for r in rows])
    _change_records(conn, _open_record)
    op.drop_index("ix_holders_doc_hash", table_name="holders")
    _drop_columns("holders", ["sealed_name", "sealed_doc_number", "doc_hash"])
    if not sqlite:
        for name in ("name", "doc_number"):
            op.alter_column("holders", name, nullable=False)
    op.create_index("ix_holders_doc_number", "holders", ["doc_number"])
    op.execute("DELETE FROM counters WHERE name = 'holder'")
