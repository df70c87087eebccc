"""Idempotency keys: a retried write returns the first answer instead of doing the work again.

A client names a write with a key of its own (the ``Idempotency-Key`` header of the JSON APIs:
``cloud/web/idempotent.py``). The rule, in the transaction of the work:

- :func:`begin` claims ``(scope, key)`` by inserting its row. A second request with the same
  key that arrives while the first is still running waits on that row (PostgreSQL's unique
  index; SQLite's single writer) and then sees the first one's answer — or, if the first
  rolled back, runs itself. Waiting is bounded (``wait_ms``): past it the answer is 409
  ``idempotency_in_progress`` and nothing ran.
- :func:`finish` stores the answer (status, body, content type) in the same transaction as the
  work, so a stored answer means the work committed, and committed work always has its answer.
- The same key with a different request (method, path or body: :func:`request_hash`) is 422
  ``idempotency_key_reused`` (Formance's and the IETF draft's semantics).
- A refusal is not remembered: a request refused with a coded error changes nothing, its
  transaction rolls back and the key with it, so a retry is judged afresh (and is refused the
  same way while nothing else changed). Only answers of work that committed are replayed.
- Keys are kept at least :data:`KEEP` (24 hours); past it a key is free again, and
  :func:`tidy` (a periodic task of ``wicket-hub worker``) deletes them.

``scope`` is who the key belongs to (``staff:<id>`` for the staff API's tokens, a buyer later):
two callers' keys never meet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cloud.core.db import UtcDateTime, metadata, per_dialect
from cloud.core.errors import Code, HubError
from sync.timeutil import utcnow

KEEP = timedelta(hours=24)
WAIT_MS = 10_000
MAX_KEY = 255

idempotency_keys = sa.Table(
    "idempotency_keys", metadata,
    sa.Column("scope", sa.String(80), primary_key=True),
    sa.Column("key", sa.String(MAX_KEY), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("content_type", sa.String(100)),
    sa.Column("body", sa.LargeBinary),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index("ix_idempotency_keys_created_at", "created_at"),
)


class IdempotencyError(HubError):
    codes = {
        "idempotency_key_bad": Code(
            400, "the Idempotency-Key header must be 1 to 255 printable ASCII characters"),
        "idempotency_key_reused": Code(
            422, "this Idempotency-Key was used for a different request"),
        "idempotency_in_progress": Code(
            409, "a request with this Idempotency-Key is still being processed: retry later"),
    }


@dataclass(frozen=True)
class Answer:
    """A stored answer, replayed byte for byte."""

    status: int
    content_type: str
    body: bytes


def valid_key(key: str) -> bool:
    """1 to 255 printable ASCII characters (space included, as in a header value)."""
    return 1 <= len(key) <= MAX_KEY and all(" " <= c <= "~" for c in key)


def request_hash(method: str, path: str, body: bytes) -> str:
    """What makes two requests the same one: method, path (with its query) and body bytes."""
    h = hashlib.sha256()
    for part in (method.upper().encode(), path.encode("utf-8"), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def begin(conn: sa.Connection, scope: str, key: str, req_hash: str,
          now: datetime | None = None, wait_ms: int = WAIT_MS) -> Answer | None:
    """Claim the key for this request in the caller's transaction: None when the work is to be
    done now (then :func:`finish` in the same transaction), else the answer to replay.
    Raises ``idempotency_key_reused`` (a different request) or ``idempotency_in_progress``
    (the claim waited ``wait_ms`` in vain: on PostgreSQL the transaction is then aborted, and
    rolls back with the error). Call it first in the transaction of the work."""
    if not valid_key(key):
        raise IdempotencyError("idempotency_key_bad")
    now = now or utcnow()
    if _claim(conn, scope, key, req_hash, now, wait_ms):
        return None
    row = conn.execute(sa.select(idempotency_keys).where(
        idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)).one()
    if row.request_hash != req_hash:
        raise IdempotencyError("idempotency_key_reused")
    if row.status is None:  # committed without an answer: never by this module
        raise IdempotencyError("idempotency_in_progress")
    return Answer(row.status, row.content_type or "application/json", bytes(row.body or b""))


def stored(conn: sa.Connection, scope: str, key: str, req_hash: str,
           now: datetime | None = None) -> Answer | None:
    """The answer already stored under the key, read without claiming it (None when there is
    none yet: the work may be running or not begun). For work that first calls another service
    with no transaction open, then claims the key: a retry of finished work is answered
    without calling it again. Raises ``idempotency_key_reused`` like :func:`begin`."""
    if not valid_key(key):
        raise IdempotencyError("idempotency_key_bad")
    now = now or utcnow()
    row = conn.execute(sa.select(idempotency_keys).where(
        idempotency_keys.c.scope == scope, idempotency_keys.c.key == key,
        idempotency_keys.c.created_at >= now - KEEP)).first()
    if row is None or row.status is None:
        return None
    if row.request_hash != req_hash:
        raise IdempotencyError("idempotency_key_reused")
    return Answer(row.status, row.content_type or "application/json", bytes(row.body or b""))


def _claim_statement(dialect):
    """Insert the key's row, or take over one past its keeping time; RETURNING the key when
    taken. On PostgreSQL the claim also bounds its own wait and puts the wait back, in the
    same statement: the row comes from a SELECT whose FROM keeps the transaction's
    ``lock_timeout`` in a setting of the hub's own (the inner ``set_config``, an argument,
    runs first) and sets the bound (``:t``) before the row is inserted; RETURNING runs once
    the row is in, after any wait, and puts the kept value back. A row the claim did not
    take returns nothing: :data:`_WAIT_AS_BEFORE` does it then."""
    insert = dialect.insert(idempotency_keys)
    returning = [idempotency_keys.c.key]
    if dialect is postgresql:
        c = idempotency_keys.c
        keep = sa.func.set_config(_KEPT, sa.func.current_setting("lock_timeout"), True)
        bound = sa.select(sa.func.set_config(
            "lock_timeout", sa.bindparam("t", type_=sa.String).concat(sa.func.left(keep, 0)),
            True)).subquery("waiting_at_most")
        insert = insert.from_select(["scope", "key", "request_hash", "created_at"], sa.select(
            *(sa.bindparam(name, type_=c[name].type)
              for name in ("scope", "key", "request_hash", "created_at"))).select_from(bound))
        returning.append(_RESTORED)
    return insert.on_conflict_do_update(
        index_elements=["scope", "key"],
        set_={"request_hash": insert.excluded.request_hash,
              "created_at": insert.excluded.created_at, "status": None, "body": None,
              "content_type": None},
        where=idempotency_keys.c.created_at < sa.bindparam("stale_before")
    ).returning(*returning)


_KEPT = "wicket.lock_timeout_before"  # the transaction's lock_timeout while a claim waits
_RESTORED = sa.func.set_config("lock_timeout", sa.func.current_setting(_KEPT), True)
_CLAIM = per_dialect(_claim_statement)
_WAIT_AS_BEFORE = sa.select(_RESTORED)
_FINISH = sa.update(idempotency_keys).where(
    idempotency_keys.c.scope == sa.bindparam("w_scope"),
    idempotency_keys.c.key == sa.bindparam("w_key"), idempotency_keys.c.status.is_(None))


def _claim(conn: sa.Connection, scope: str, key: str, req_hash: str, now: datetime,
           wait_ms: int) -> bool:
    """Insert the key's row unless it is there (a row past its keeping time is taken over in
    the same statement: such a key is free again, tidied or not); True when this caller
    inserted or took it. Must be the transaction's first write: a wait past ``wait_ms``
    aborts the transaction (the caller's rolls back on the error)."""
    values = {"scope": scope, "key": key, "request_hash": req_hash, "created_at": now,
              "stale_before": now - KEEP}
    if conn.dialect.name != "postgresql":  # one writer at a time: any row is committed
        return conn.execute(_CLAIM(conn), values).first() is not None
    # a request with the same key still running holds its row: wait for it, but not forever
    try:
        inserted = conn.execute(_CLAIM(conn),
                                {**values, "t": f"{int(wait_ms)}ms"}).first() is not None
    except sa.exc.OperationalError as e:
        if getattr(e.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        raise IdempotencyError("idempotency_in_progress") from None
    if not inserted:
        conn.execute(_WAIT_AS_BEFORE)
    return inserted


def finish(conn: sa.Connection, scope: str, key: str, status: int, body: bytes,
           content_type: str = "application/json") -> None:
    """Store the answer of the work done under the key, in the work's own transaction."""
    done = conn.execute(_FINISH, {"w_scope": scope, "w_key": key, "status": status,
                                  "body": body, "content_type": content_type}).rowcount
    if done != 1:
        raise RuntimeError(f"idempotency key {scope}/{key!r} was not claimed by this request")


def tidy(conn: sa.Connection, now: datetime | None = None, keep: timedelta = KEEP) -> int:
    """Delete keys older than ``keep`` (at least :data:`KEEP`); how many went."""
    if keep < KEEP:
        raise ValueError("idempotency keys are kept at least 24 hours")
    now = now or utcnow()
    return conn.execute(sa.delete(idempotency_keys)
                        .where(idempotency_keys.c.created_at < now - keep)).rowcount
