"""``wicket-edge sync``: the sync agent as a service (its own process, one systemd unit).

Each stream runs on its own interval (APScheduler, one worker thread, so steps never overlap
and one SQLite connection serves them all). While the hub is down every step waits out an
exponential backoff with jitter (1 s doubling up to ``sync_backoff_max_s``); the link going
down is logged once as a WARNING and coming back once as INFO. Scanning is never affected: the
lanes read and write the database on their own, and the agent's transactions are short.

``sync --once`` runs every step one time and exits: 0 all done, 3 the hub could not be reached
or failed (try again later), 4 the hub refused this appliance (personal data wiped), 2 a
configuration problem.
"""

from __future__ import annotations

import logging
import random
import signal
import sqlite3
import sys
import time
from collections.abc import Callable

from edge import config as config_mod
from edge import db as db_mod
from edge.db import immediate
from edge.holders import HolderKeyError, HolderVault
from edge.uplink.agent import STREAMS, Agent, NotEnrolled, Wiped, load_link
from edge.uplink.state import get_state, set_state
from sync.client import HubError, HubUnavailable
from sync.diskfault import guard
from sync.timeutil import to_iso, utcnow

log = logging.getLogger(__name__)
EXIT_OK, EXIT_CONFIG, EXIT_TEMPORARY, EXIT_UNAUTHORIZED = 0, 2, 3, 4


class HubLinkState:
    """Whether the hub answers, the backoff while it does not, and the one-line logs."""

    def __init__(self, conn: sqlite3.Connection, backoff_max_s: float,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic):
        self.conn = conn
        self.backoff_max_s = backoff_max_s
        self.rng = rng or random.Random()
        self.clock = clock
        self.failures = 0
        self.next_at = 0.0
        self.down = get_state(conn, "hub_state") == "down"

    def ready(self) -> bool:
        return self.clock() >= self.next_at

    def delay(self) -> float:
        base = min(self.backoff_max_s, 2.0 ** max(0, self.failures - 1))
        return base * self.rng.uniform(0.5, 1.0)  # "equal jitter": never less than half

    def failed(self, error: HubError) -> None:
        self.failures += 1
        self.next_at = self.clock() + self.delay()
        if not self.down:
            self.down = True
            log.warning("hub unreachable, entries queue and lanes go on: %s", error)
            with immediate(self.conn):
                set_state(self.conn, "hub_state", "down")
                set_state(self.conn, "hub_down_since", to_iso(utcnow()))

    def ok(self) -> None:
        self.failures = 0
        self.next_at = 0.0
        if self.down:
            self.down = False
            since = get_state(self.conn, "hub_down_since")
            log.info("hub reachable again (down since %s)", since or "unknown")
        if get_state(self.conn, "hub_state") != "up":
            with immediate(self.conn):
                set_state(self.conn, "hub_state", "up")
                set_state(self.conn, "hub_down_since", None)


def _say(text: str, end: str = "\n") -> None:
    """A message for the person at the terminal (``sync --once``), on standard error."""
    sys.stderr.write(text + end)
    sys.stderr.flush()


def _progress_bar() -> Callable[[int, int | None], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int | None) -> None:
        if total:
            width = 30
            filled = min(width, done * width // max(total, 1))
            _say(f"\r  allowlist [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
                 end="\n" if done >= total else "")
        else:
            _say(f"\r  allowlist: {done} changes", end="")

    return show


def _open(cfg: config_mod.Config):
    if not cfg.database.exists():
        raise config_mod.ConfigError(f"{cfg.database}: no database yet; run `wicket-edge init`")
    if db_mod.migrations.pending(db_mod.open_db(cfg.database)):
        raise config_mod.ConfigError(f"{cfg.database}: the database needs an upgrade; run "
                                     "`wicket-edge init`")
    try:
        vault = HolderVault(cfg.holder_key)
    except HolderKeyError as e:
        raise config_mod.ConfigError(f"{cfg.path}: holder_key: {e}") from None
    return db_mod.connect(cfg.database), vault


def _not_enrolled(conn: sqlite3.Connection, e: NotEnrolled) -> int:
    if get_state(conn, "revoked_at"):
        _say(f"wicket-edge: the hub revoked this appliance at {get_state(conn, 'revoked_at')};"
              " its personal data was wiped. Enroll it again to sync.")
        return EXIT_UNAUTHORIZED
    _say(f"wicket-edge: {e}")
    return EXIT_CONFIG


def run_once(cfg: config_mod.Config) -> int:
    conn, vault = _open(cfg)
    try:
        try:
            link = load_link(cfg)
        except NotEnrolled as e:
            return _not_enrolled(conn, e)
        agent = Agent(cfg, conn, vault, link, progress=_progress_bar())
        state = HubLinkState(conn, cfg.sync_backoff_max_s)
        try:
            failures = agent.run_once()
        except sqlite3.OperationalError as e:  # e.g. busy beyond the timeout
            _say(f"wicket-edge: database busy, try again: {e}")
            return EXIT_TEMPORARY
        except Wiped as e:
            _say(f"wicket-edge: {e}; personal data wiped, syncing stopped")
            return EXIT_UNAUTHORIZED
        finally:
            agent.client.close()
        if not failures:
            state.ok()
            return EXIT_OK
        for stream, error in failures:
            _say(f"wicket-edge: {stream}: {error}")
        if any(isinstance(e, HubUnavailable) for _, e in failures):
            state.failed(failures[0][1])
        return EXIT_TEMPORARY
    finally:
        conn.close()


class Service:
    """The long-running agent: one job per stream, run by one worker thread."""

    def __init__(self, cfg: config_mod.Config):
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.cfg = cfg
        self.exit_code = EXIT_OK
        self.scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)},
                                           job_defaults={"coalesce": True, "max_instances": 1,
                                                         "misfire_grace_time": None})
        self.agent: Agent | None = None
        self.state: HubLinkState | None = None
        self._stop_code: int | None = None  # set once, by a signal or a job: stop with this

    def _agent(self) -> Agent:
        # made in the worker thread: SQLite connections stay in the thread that opened them
        if self.agent is None:
            conn, vault = _open(self.cfg)
            self.agent = Agent(self.cfg, conn, vault, load_link(self.cfg))
            self.state = HubLinkState(conn, self.cfg.sync_backoff_max_s)
        return self.agent

    def job(self, stream: str) -> None:
        if self._stop_code is not None:
            return
        try:
            agent = self._agent()
        except (NotEnrolled, config_mod.ConfigError) as e:
            log.error("sync stopped: %s", e)
            self.stop(EXIT_CONFIG)
            return
        assert self.state is not None
        if not self.state.ready():
            return
        try:
            agent.step(stream)
        except Wiped as e:
            log.error("sync stopped: %s", e)
            self.stop(EXIT_UNAUTHORIZED)
        except HubUnavailable as e:
            log.debug("%s: %s", stream, e)
            self.state.failed(e)
        except HubError as e:  # refused: the hub is up, this request is wrong
            log.warning("%s: %s", stream, e)
            self.state.ok()
        except sqlite3.OperationalError as e:  # e.g. busy beyond the timeout: next time
            log.warning("%s: database busy, will try again: %s", stream, e)
        else:
            self.state.ok()

    def stop(self, code: int = EXIT_OK) -> None:
        """Ask the service to stop with ``code``. Called from a signal handler and from the
        worker thread, so it only sets an attribute: a handler that took a lock (the
        scheduler's, its executor's) could deadlock with the main thread it interrupted."""
        if self._stop_code is None:
            self._stop_code = code

    def run(self) -> int:
        from datetime import datetime

        intervals = {"revocations": self.cfg.sync_revocations_s,
                     "allowlist": self.cfg.sync_allowlist_s,
                     "entries": self.cfg.sync_entries_s, "heartbeat": self.cfg.heartbeat_s}
        # first of all: a stop asked while starting is then a clean stop like any other
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop(EXIT_OK))
        conn, _ = _open(self.cfg)
        try:
            load_link(self.cfg)
        except NotEnrolled as e:
            return _not_enrolled(conn, e)
        finally:
            conn.close()
        if self._stop_code is not None:
            log.info("sync agent stopped before it started")
            return self._stop_code
        for stream in STREAMS:
            self.scheduler.add_job(self.job, "interval", args=(stream,), id=stream,
                                   seconds=intervals[stream], next_run_time=datetime.now())
        log.info("sync agent started")
        self.scheduler.start()
        while self._stop_code is None:  # the main thread only waits: signals land here
            time.sleep(0.2)
        self.exit_code = self._stop_code
        self.scheduler.shutdown(wait=False)
        if self.agent is not None:
            self.agent.client.close()
        log.info("sync agent stopped")
        return self.exit_code


def main(config_path: str | None = None, once: bool = False) -> int:
    def work() -> int:
        cfg = config_mod.load(config_path)
        if once:
            return run_once(cfg)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        return Service(cfg).run()

    try:
        return guard("wicket-edge sync", work, lambda: config_mod.disk_paths(config_path))
    except config_mod.ConfigError as e:
        _say(f"wicket-edge: {e}")
        return EXIT_CONFIG
