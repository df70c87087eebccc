"""Background work as rows: a job is written in the same transaction as its cause
(:func:`enqueue`), so it exists exactly when the cause committed, and is taken by
``wicket-hub worker`` processes (``cloud/core/worker.py``).

- Taking (:func:`claim`): one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)`` on
  PostgreSQL, so several workers on several machines take different jobs without waiting on
  each other; on SQLite the same conditional UPDATE (one writer at a time: a job already taken
  no longer matches). A claim is a *lease* (``taken_until``): a worker killed mid-job leaves
  the job to be taken again once the lease has passed.
- Doing (:func:`run_one`): the handler runs in a transaction that also marks the job done, but
  only while the lease is still this worker's (:func:`complete`): a worker whose lease was
  taken over rolls its work back, so the work commits once. A handler that talks to another
  service (a payment provider) is registered ``apart``: it gets the engine and opens its own
  short transactions around the call, never holding rows locked while it waits on the
  network; it must then be safe to run again (the job is marked done after it).
- Failing (:func:`fail`): the error is kept, the job waits ``backoff(attempts)`` and is tried
  again, up to its ``max_attempts``; then it is *dead* (kept, with its last error, for ops).

Core knows no area: the handlers by kind and the periodic tasks are registered in a
:class:`Tasks` that the composer (``cloud/cli.py``) fills.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cloud.core.changes import claim_turn, counters
from cloud.core.db import UtcDateTime, metadata
from sync.timeutil import utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=10)
BACKOFF_CAP = timedelta(hours=1)

jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(60), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("state", sa.String(10), nullable=False, server_default="waiting"),
    sa.Column("run_after", UtcDateTime(), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("taken_by", sa.String(120)),
    sa.Column("taken_until", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("done_at", UtcDateTime()),
    sa.CheckConstraint("state IN ('waiting', 'done', 'dead')", name="state_known"),
    sa.CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="attempts_range"),
    sa.Index("ix_jobs_state_run_after", "state", "run_after"),
)

# a handler or periodic task gets a connection in its transaction, or, registered ``apart``,
# the engine (its own transactions)
Handler = Callable[[Any, dict[str, Any], datetime], None]
PeriodicTask = Callable[[Any, datetime], Any]


@dataclass(frozen=True)
class Periodic:
    name: str
    seconds: float
    task: PeriodicTask
    apart: bool = False


@dataclass
class Tasks:
    """What a worker can do: a handler per job kind, and periodic tasks. Filled by the
    composer, one ``register``/``every`` per task an area offers."""

    handlers: dict[str, Handler] = field(default_factory=dict)
    periodic: list[Periodic] = field(default_factory=list)
    apart: set[str] = field(default_factory=set)  # job kinds whose handler gets the engine

    def register(self, kind: str, handler: Handler, apart: bool = False) -> None:
        if kind in self.handlers:
            raise ValueError(f"job kind {kind!r} has a handler already")
        self.handlers[kind] = handler
        if apart:
            self.apart.add(kind)

    def every(self, name: str, seconds: float, task: PeriodicTask, apart: bool = False) -> None:
        if any(p.name == name for p in self.periodic):
            raise ValueError(f"periodic task {name!r} is registered already")
        self.periodic.append(Periodic(name, seconds, task, apart))


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    taken_by: str


class LeaseLost(RuntimeError):
    """The job's lease passed and another worker took it: this worker's work is rolled back."""


def worker_name() -> str:
    """Who takes a job: host, process and thread (a claim's owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def enqueue(conn: sa.Connection, kind: str, payload: dict[str, Any],
            run_after: datetime | None = None, now: datetime | None = None,
            max_attempts: int = MAX_ATTEMPTS) -> int:
    """A job, in the caller's transaction (it exists exactly when the cause commits)."""
    now = now or utcnow()
    return conn.execute(sa.insert(jobs).values(
        kind=kind, payload=payload, state="waiting", run_after=run_after or now, attempts=0,
        max_attempts=max_attempts, created_at=now).returning(jobs.c.id)).scalar_one()


def backoff(attempts: int) -> timedelta:
    """How long a job waits after its ``attempts``-th failure: 10 s, 20 s, 40 s ... at most
    an hour."""
    return min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(0, attempts - 1)))


def _claimable(now: datetime, kinds: list[str]) -> list[sa.ColumnElement[bool]]:
    return [jobs.c.state == "waiting", jobs.c.run_after <= now, jobs.c.kind.in_(kinds),
            sa.or_(jobs.c.taken_until.is_(None), jobs.c.taken_until <= now)]


def claim(conn: sa.Connection, worker: str, kinds: list[str], now: datetime | None = None,
          lease: timedelta = LEASE, limit: int = 1) -> list[Job]:
    """Take up to ``limit`` due jobs of these kinds for ``worker``, oldest first; commit the
    caller's transaction right after, so the lease is seen by other workers. A job whose last
    attempt's lease has passed is dead instead (its worker died every time)."""
    now = now or utcnow()
    if not kinds:
        return []
    conn.execute(sa.update(jobs).where(
        *_claimable(now, kinds), jobs.c.taken_until.is_not(None),
        jobs.c.attempts >= jobs.c.max_attempts).values(
        state="dead", taken_by=None, taken_until=None,
        last_error=sa.func.coalesce(jobs.c.last_error, "") + " (the worker was lost)"))
    due = (sa.select(jobs.c.id).where(*_claimable(now, kinds))
           .order_by(jobs.c.run_after, jobs.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        # a materialised CTE: as a plain IN (subquery) the planner may run the LIMIT more
        # than once and take more jobs than asked for
        cte = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        taken = jobs.c.id.in_(sa.select(cte.c.id))
    else:
        taken = jobs.c.id.in_(due.scalar_subquery())
    rows = conn.execute(sa.update(jobs).where(taken, *_claimable(now, kinds))
                        .values(attempts=jobs.c.attempts + 1, taken_by=worker,
                                taken_until=now + lease)
                        .returning(jobs.c.id, jobs.c.kind, jobs.c.payload, jobs.c.attempts,
                                   jobs.c.max_attempts)).all()
    return sorted((Job(r.id, r.kind, r.payload, r.attempts, r.max_attempts, worker)
                   for r in rows), key=lambda j: j.id)


def _ours(job: Job):
    return (jobs.c.id == job.id, jobs.c.state == "waiting", jobs.c.taken_by == job.taken_by,
            jobs.c.attempts == job.attempts)


def complete(conn: sa.Connection, job: Job, now: datetime | None = None) -> None:
    """Mark the job done in the transaction of its work; :class:`LeaseLost` if it is no
    longer this worker's (the caller rolls back)."""
    done = conn.execute(sa.update(jobs).where(*_ours(job)).values(
        state="done", done_at=now or utcnow(), taken_until=None)).rowcount
    if done != 1:
        raise LeaseLost(f"job {job.id} was taken over")


def fail(conn: sa.Connection, job: Job, error: str, now: datetime | None = None) -> str:
    """Record a failed attempt: the job waits its backoff, or is dead after its last attempt.
    Returns the job's new state ('waiting', 'dead', or 'lost' when it was no longer ours)."""
    now = now or utcnow()
    dead = job.attempts >= job.max_attempts
    changed = conn.execute(sa.update(jobs).where(*_ours(job)).values(
        state="dead" if dead else "waiting", last_error=error[:2000], taken_by=None,
        taken_until=None, run_after=jobs.c.run_after if dead else now + backoff(job.attempts))
    ).rowcount
    return ("dead" if dead else "waiting") if changed else "lost"


def run_one(engine: sa.Engine, tasks: Tasks, worker: str, now: datetime | None = None,
            lease: timedelta = LEASE) -> tuple[Job, str] | None:
    """Take one due job and do it: ``(job, 'done' | 'waiting' | 'dead' | 'lost')``, or None
    when there was nothing to do."""
    with engine.begin() as conn:
        taken = claim(conn, worker, sorted(tasks.handlers), now, lease)
    if not taken:
        return None
    job = taken[0]
    log.info("job %s (%s) taken, attempt %s of %s", job.id, job.kind, job.attempts,
             job.max_attempts)
    started = time.monotonic()
    try:
        if job.kind in tasks.apart:
            tasks.handlers[job.kind](engine, job.payload, now or utcnow())
            with engine.begin() as conn:
                complete(conn, job, now)
        else:
            with engine.begin() as conn:
                tasks.handlers[job.kind](conn, job.payload, now or utcnow())
                complete(conn, job, now)
    except LeaseLost:
        log.warning("job %s (%s): lease lost to another worker; its work rolled back",
                    job.id, job.kind)
        return job, "lost"
    except Exception as e:  # noqa: BLE001 - any failure of a handler is the job's, recorded
        with engine.begin() as conn:
            state = fail(conn, job, f"{type(e).__name__}: {e}", now)
        log.warning("job %s (%s) failed (attempt %s of %s): %s: %s; now %s", job.id, job.kind,
                    job.attempts, job.max_attempts, type(e).__name__, e, state)
        return job, state
    log.info("job %s (%s) done in %.0f ms", job.id, job.kind,
             (time.monotonic() - started) * 1000)
    return job, "done"


def run_periodic(engine: sa.Engine, task: Periodic, now: datetime | None = None) -> bool:
    """One turn of a periodic task, unless another worker took this turn within the task's
    interval (a ``counters`` row per task: several workers run it once per interval between
    them). True when it ran here."""
    now = now or utcnow()
    name = f"periodic:{task.name}"
    with engine.begin() as conn:
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)
        conn.execute(insert(counters).values(name=name, value=0).on_conflict_do_nothing())
    with engine.begin() as conn:
        # a little slack, so that a tick that comes a moment early still takes its turn
        if not claim_turn(conn, name, int(now.timestamp() * 1000),
                          int(task.seconds * 900)):
            return False
        if not task.apart:
            result = task.task(conn, now)
    if task.apart:  # the turn is taken and committed; the task opens its own transactions
        result = task.task(engine, now)
    log.info("periodic %s ran: %s", task.name, result)
    return True


def counts(conn: sa.Connection) -> dict[str, int]:
    """Jobs by state (for the worker's log and ops)."""
    return dict(conn.execute(sa.select(jobs.c.state, sa.func.count())
                             .group_by(jobs.c.state)).all())
