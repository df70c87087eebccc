"""Rate-limit counters kept in the hub's database, shared by every app process.

The hub runs several gunicorn workers, often on more than one machine behind a proxy; a limit
counted in one process's memory would let each worker grant the whole allowance. The database
is the one thing they all share already, so a fixed-window counter lives there: a row per key
and window, bumped with one conditional statement, so concurrent hits are counted exactly. No
new service to run, back up or secure for a few writes per sign-in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.core.db import UtcDateTime, metadata

# A counter per limit key (what is limited and for whom) in its current window; a row whose
# window has passed starts again from 1 at the next hit.
rate_limits = sa.Table(
    "rate_limits", metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("hits", sa.Integer, nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False, index=True),
)


def without_waiting_for_disk(conn: sa.Connection) -> None:
    """Let this transaction's commit return before its record reaches the disk (PostgreSQL's
    ``synchronous_commit`` off, for this transaction only). A counter is written on every
    call of the API; waiting for the disk each time made counting cost more than most
    answers. What a crash can lose is the last moment's hits, never a consistent state: a
    limit is a rough bound on a client, not a record anyone relies on."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


# The same, set by the statement that writes (``INSERT … SELECT … FROM {WITHOUT_WAITING}``)
# and so without a round trip of its own: ``set_config(…, true)`` lasts until the commit,
# which reads it. PostgreSQL only.
WITHOUT_WAITING = "(SELECT set_config('synchronous_commit', 'off', true)) AS without_waiting"


_HIT = sa.update(rate_limits).where(
    rate_limits.c.key == sa.bindparam("k"), rate_limits.c.expires_at > sa.bindparam("now")
).values(hits=rate_limits.c.hits + sa.bindparam("amount", type_=sa.Integer)).returning(
    rate_limits.c.hits, rate_limits.c.expires_at)


def hit(conn: sa.Connection, key: str, window: timedelta, now: datetime, amount: int = 1) -> int:
    """Count ``amount`` hits on ``key`` and return the count in its current window (which starts
    at the first hit after the last window ended)."""
    return hit_until(conn, key, window, now, amount)[0]


def hit_until(conn: sa.Connection, key: str, window: timedelta, now: datetime,
              amount: int = 1) -> tuple[int, datetime]:
    """:func:`hit`, with the end of the window the hits were counted in."""
    got = conn.execute(_HIT, {"k": key, "now": now, "amount": amount}).first()
    if got is not None:
        return int(got[0]), got[1]
    # no live window: start one (replacing an ended one); a racing starter's row wins and
    # this hit is counted on it
    conn.execute(sa.delete(rate_limits).where(rate_limits.c.key == key,
                                              rate_limits.c.expires_at <= now))
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(dialect.insert(rate_limits).values(
        key=key, hits=amount, expires_at=now + window).on_conflict_do_nothing(
        index_elements=["key"]))
    if inserted.rowcount:
        return amount, now + window
    return hit_until(conn, key, window, now, amount)


def count(conn: sa.Connection, key: str, now: datetime) -> tuple[int, datetime | None]:
    """The hits counted on ``key`` in its live window and when that window ends (0, None when
    there is none)."""
    row = conn.execute(sa.select(rate_limits.c.hits, rate_limits.c.expires_at).where(
        rate_limits.c.key == key, rate_limits.c.expires_at > now)).first()
    if row is None:
        return 0, None
    return int(row.hits), row.expires_at


def clear(conn: sa.Connection, key: str | None = None, now: datetime | None = None) -> None:
    """Forget one key's counter, every counter (``key`` None), or only the ended ones
    (``now`` given)."""
    q = sa.delete(rate_limits)
    if key is not None:
        q = q.where(rate_limits.c.key == key)
    if now is not None:
        q = q.where(rate_limits.c.expires_at <= now)
    conn.execute(q)
