"""``wicket-hub worker``: the process that does the hub's background work.

One loop takes due jobs one at a time (``cloud/core/jobs.py``) and sleeps ``poll_s`` when there
are none; an APScheduler background scheduler (one thread, runs never overlap, missed runs
coalesce) drives the periodic tasks. Any number of workers may run beside ``serve``, on one
machine or several: jobs are taken with ``SKIP LOCKED`` and each periodic task runs once per
interval between them. :meth:`Worker.stop` (SIGTERM, from the command) lets the job in hand
finish, stops the scheduler after its running task, and returns.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from cloud.core import jobs

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, engine: sa.Engine, tasks: jobs.Tasks, name: str | None = None,
                 poll_s: float = 1.0, lease: timedelta = jobs.LEASE):
        self.engine, self.tasks, self.poll_s, self.lease = engine, tasks, poll_s, lease
        self.name = name or jobs.worker_name()
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Work until :meth:`stop`."""
        scheduler = self._scheduler()
        scheduler.start()
        log.info("worker %s started: job kinds %s; periodic %s", self.name,
                 ", ".join(sorted(self.tasks.handlers)) or "none",
                 ", ".join(f"{p.name} every {p.seconds:g} s" for p in self.tasks.periodic)
                 or "none")
        try:
            while not self._stopping.is_set():
                if not self._step():
                    self._stopping.wait(self.poll_s)
        finally:
            scheduler.shutdown(wait=True)
            log.info("worker %s stopped", self.name)

    def _step(self) -> bool:
        """One job; False when there was none (or the database could not be reached: the
        error is logged, and the loop waits before it tries again)."""
        try:
            return jobs.run_one(self.engine, self.tasks, self.name, lease=self.lease) is not None
        except sa.exc.OperationalError as e:
            log.error("worker %s: the database is unreachable (%s); trying again",
                      self.name, e.orig)
            return False

    def _periodic(self, task: jobs.Periodic) -> None:
        try:
            jobs.run_periodic(self.engine, task)
        except Exception:  # the scheduler would only print it; the next tick tries again
            log.exception("periodic %s failed", task.name)

    def _scheduler(self):
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        for task in self.tasks.periodic:
            scheduler.add_job(self._periodic, "interval", seconds=task.seconds, args=[task],
                              id=task.name, name=task.name, next_run_time=datetime.now(UTC))
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        return scheduler
