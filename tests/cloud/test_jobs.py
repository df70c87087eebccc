"""Background jobs: enqueued with their cause, taken once (SKIP LOCKED on PostgreSQL, a
conditional UPDATE on SQLite), retried with backoff, dead after their last attempt, taken
again when their worker dies; periodic tasks once per interval between workers; the
``wicket-hub worker`` process stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.core import jobs
from cloud.core.db import init_db, make_engine
from cloud.core.jobs import Tasks, backoff, claim, enqueue, run_one
from cloud.core.jobs import jobs as jobs_table

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def _job(engine, job_id: int):
    with engine.connect() as conn:
        return conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).one()


def test_a_job_exists_only_if_its_cause_committed(engine):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        enqueue(conn, "mail", {"to": 1}, now=NOW)
        raise RuntimeError("the sale failed")
    with engine.begin() as conn:
        job_id = enqueue(conn, "mail", {"to": 2}, now=NOW)
    done: list = []
    tasks = Tasks()
    tasks.register("mail", lambda conn, payload, now: done.append(payload))
    assert run_one(engine, tasks, "w1", now=NOW) is not None
    assert run_one(engine, tasks, "w1", now=NOW) is None
    assert done == [{"to": 2}]
    row = _job(engine, job_id)
    assert (row.state, row.attempts, row.done_at) == ("done", 1, NOW)


def test_the_work_and_the_done_mark_commit_together(engine):
    """A handler's writes are in the job's transaction: a failure rolls them back."""
    with engine.begin() as conn:
        job_id = enqueue(conn, "flaky", {}, now=NOW)

    def flaky(conn, payload, now):
        jobs.enqueue(conn, "follow-up", {}, now=now)  # a write of the handler
        raise ValueError("provider timed out")

    tasks = Tasks()
    tasks.register("flaky", flaky)
    job, state = run_one(engine, tasks, "w1", now=NOW)
    assert (job.id, state) == (job_id, "waiting")
    row = _job(engine, job_id)
    assert row.last_error == "ValueError: provider timed out"
    assert row.run_after == NOW + backoff(1) and row.taken_by is None
    with engine.connect() as conn:
        assert jobs.counts(conn) == {"waiting": 1}  # no follow-up: rolled back


def test_failures_back_off_then_the_job_is_dead(engine):
    with engine.begin() as conn:
        job_id = enqueue(conn, "bad", {}, now=NOW, max_attempts=3)
    tasks = Tasks()
    tasks.register("bad", lambda conn, payload, now: 1 / 0)
    at, states = NOW, []
    for _ in range(3):
        assert run_one(engine, tasks, "w1", now=at - timedelta(seconds=1)) is None  # not due
        states.append(run_one(engine, tasks, "w1", now=at)[1])
        at = _job(engine, job_id).run_after
    assert states == ["waiting", "waiting", "dead"]
    assert [backoff(n) for n in (1, 2, 3, 20)] == [
        timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=40), timedelta(hours=1)]
    row = _job(engine, job_id)
    assert (row.state, row.attempts) == ("dead", 3)
    assert row.last_error.startswith("ZeroDivisionError")
    assert run_one(engine, tasks, "w1", now=NOW + timedelta(days=1)) is None


def test_a_job_whose_worker_died_is_taken_again_after_its_lease(engine):
    with engine.begin() as conn:
        job_id = enqueue(conn, "mail", {}, now=NOW, max_attempts=2)
    with engine.begin() as conn:  # worker 1 takes it, then is killed
        [lost] = claim(conn, "w1", ["mail"], now=NOW, lease=timedelta(minutes=5))
    tasks = Tasks()
    tasks.register("mail", lambda conn, payload, now: None)
    assert run_one(engine, tasks, "w2", now=NOW + timedelta(minutes=4)) is None  # leased
    job, state = run_one(engine, tasks, "w2", now=NOW + timedelta(minutes=5))
    assert (job.id, job.attempts, state) == (job_id, 2, "done")
    # the dead worker, had it woken up, could not mark it done nor fail it
    with engine.begin() as conn, pytest.raises(jobs.LeaseLost):
        jobs.complete(conn, lost, NOW)
    with engine.begin() as conn:
        assert jobs.fail(conn, lost, "late", NOW) == "lost"


def test_a_worker_that_outlived_its_lease_rolls_its_work_back(engine):
    with engine.begin() as conn:
        job_id = enqueue(conn, "slow", {}, now=NOW)
    tasks = Tasks()

    def slow(conn, payload, now):
        jobs.enqueue(conn, "side-effect", {}, now=now)
        # meanwhile the lease passed and another worker took the job (as its claim would)
        conn.execute(sa.update(jobs_table).where(jobs_table.c.id == job_id).values(
            taken_by="w2", attempts=jobs_table.c.attempts + 1))

    tasks.register("slow", slow)
    assert run_one(engine, tasks, "w1", now=NOW)[1] == "lost"
    with engine.connect() as conn:
        assert jobs.counts(conn) == {"waiting": 1}  # no side effect, and not done


def test_a_worker_takes_only_kinds_it_has_a_handler_for(engine):
    with engine.begin() as conn:
        enqueue(conn, "later-area", {}, now=NOW)
        assert claim(conn, "w1", ["mail"], now=NOW) == []
        assert claim(conn, "w1", [], now=NOW) == []


def test_sqlite_claim_is_a_conditional_update(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    init_db(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        ids = [enqueue(conn, "mail", {"n": n}, now=NOW) for n in range(3)]
    with engine.begin() as conn:
        first = claim(conn, "w1", ["mail"], now=NOW, limit=2)
    with engine.begin() as conn:
        second = claim(conn, "w2", ["mail"], now=NOW, limit=2)
    assert [j.id for j in first] == ids[:2] and [j.id for j in second] == ids[2:]
    engine.dispose()


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_claimed_job_is_skipped_not_waited_for(engine):
    """A worker's claim locks its row until it commits; another worker's claim skips it at
    once (a lock_timeout proves it does not wait) and takes the next job."""
    with engine.begin() as conn:
        ids = [enqueue(conn, "mail", {"n": n}, now=NOW) for n in range(2)]
    with engine.connect() as first, engine.connect() as second:
        first.begin()
        assert [j.id for j in claim(first, "w1", ["mail"], now=NOW)] == ids[:1]
        second.begin()
        # the first holds its row until after the second's claim: a claim that waited for it
        # would fail after this timeout, which a claim that skips it never comes near
        second.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
        assert [j.id for j in claim(second, "w2", ["mail"], now=NOW, limit=5)] == ids[1:]
        first.commit()
        second.commit()


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_on_postgresql_two_workers_never_run_one_job_twice(engine):
    """Two worker threads, each with its own connections, start together (a barrier) and
    work until nothing is left: every job ran exactly once."""
    n_jobs = 40
    with engine.begin() as conn:
        ids = [enqueue(conn, "count", {"n": n}, now=NOW) for n in range(n_jobs)]
    ran: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        tasks = Tasks()

        def count(conn, payload, now):
            with lock:
                ran.append((name, payload["n"]))
        tasks.register("count", count)
        try:
            barrier.wait()
            while run_one(engine, tasks, name, now=NOW) is not None:
                pass
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(n for _, n in ran) == list(range(n_jobs))
    with engine.connect() as conn:
        assert jobs.counts(conn) == {"done": n_jobs}
        assert conn.execute(sa.select(sa.func.max(jobs_table.c.attempts))).scalar() == 1
    assert len(ids) == n_jobs


def test_a_periodic_task_runs_once_per_interval_between_workers(engine):
    ran: list[datetime] = []
    task = jobs.Periodic("tidy", 60, lambda conn, now: ran.append(now))
    assert jobs.run_periodic(engine, task, NOW)
    assert not jobs.run_periodic(engine, task, NOW + timedelta(seconds=30))  # another worker
    assert jobs.run_periodic(engine, task, NOW + timedelta(seconds=60))
    assert ran == [NOW, NOW + timedelta(seconds=60)]


def _read_lines(stream, into: queue.Queue) -> None:
    """Each line of ``stream`` onto the queue, then None at its end (and the stream closed)."""
    with stream:
        for line in stream:
            into.put(line)
    into.put(None)


def test_the_worker_command_tidies_keys_and_stops_on_sigterm(hub_url, tmp_path):
    init_db(hub_url)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud.cli", "--db", hub_url, "--data-key",
         str(tmp_path / "data.key"), "worker", "--poll", "0.2"],
        stderr=subprocess.PIPE, text=True, env=env)
    # read in a thread of its own: a worker that hangs without a word cannot hang the test
    read: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stderr, read), daemon=True)
    reader.start()
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                line = read.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("the worker did not tidy within 60 s; it said:\n" + "".join(lines))
            if line is None:
                break
            lines.append(line)
            if "periodic tidy_idempotency_keys ran" in line:
                break
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(60)
    while not read.empty():  # what it said after the tidy, to its end
        lines.append(read.get_nowait() or "")
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert ("started: job kinds buyers.deliver_tickets, channels.topup_paid, channels.webhook, "
            "lottery.refund_losers, "
            "payments.refund_request, payments.refund_unplaced, sessions.refund_cancelled; "
            "periodic tidy_idempotency_keys every 3600 s, tidy_rate_limits every 3600 s, "
            "expire_lapsed_orders every 60 s, follow_up_payments every 60 s, "
            "delete_reviewed_photos every 3600 s, tidy_buyer_accounts every 3600 s, "
            "settle_presale_refunds every 30 s, presales_of_cancelled_sessions every 60 s, "
            "import_statements every 3600 s, "
            "settle_partners every 3600 s, entry_flag_blocks every 60 s, "
            "webhook_ticket_used every 30 s, tidy_api_nonces every 3600 s") in out
    assert "stopped" in out
