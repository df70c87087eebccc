"""The gate runtime's supervisor and ``main()``: ``wicket-edge gates``.

It follows the database, the only bus between the appliance's processes:

- lanes (with their gate's real-name mode) and devices as configured: a device added, changed,
  enabled or disabled is picked up within ``poll_s``, without a restart (its thread is
  replaced; the other devices carry on);
- ``device_commands`` from the web pages: ``open_lane`` (a supervisor's override, a scan on the
  gate screen) and ``test`` (a turnstile pulse, the next scan of a reader:
  ``edge/gates/device_test.py``), taken once, never after they expired (``edge/commands.py``);
- each device's state and metrics, written back to ``devices`` (state, state_detail, state_at,
  health) in one transaction every ``health_s``, and ``seen_at`` for every device whose
  thread is alive every ``beat_s`` whether or not anything changed (the pages show a device
  whose ``seen_at`` is old as not reporting);
- systemd: ``READY=1`` once running, ``WATCHDOG=1`` while every lane thread is alive and
  turning, ``STOPPING=1`` on the way out.

At start and at stop, admissions a run left waiting for a passage are settled as
``unconfirmed`` (``edge/passages.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.base import DeviceState, Scan, TurnstileEvent
from edge import commands, passages
from edge import config as config_mod
from edge import db as db_mod
from edge.db import immediate
from edge.gates import notify
from edge.gates.device_test import DeviceTests
from edge.gates.devices import (
    KINDS,
    TURNSTILE_KIND,
    Backoff,
    DeviceRow,
    DeviceWorker,
    build_driver,
)
from edge.gates.lane import LaneConfig, LaneWorker
from edge.holders import HolderKeyError, HolderVault
from sync.diskfault import guard
from sync.timeutil import to_iso, utcnow

log = logging.getLogger(__name__)

_LANES_SQL = """
SELECT l.id, l.code, l.direction, l.passage_timeout_s, l.enabled, g.realname_mode
FROM lanes l JOIN gates g ON g.id = l.gate_id
"""
_DEVICES_SQL = "SELECT id, lane_id, kind, config, enabled FROM devices ORDER BY id"
BEAT_S = 20.0  # a third of what the pages wait before showing a device as not reporting


class GateRuntime:
    def __init__(self, db_path: str | Path, vault: HolderVault, *, poll_s: float = 0.5,
                 health_s: float = 2.0, beat_s: float = BEAT_S,
                 backoff_s: tuple[float, float] = (0.5, 30.0),
                 realname_window_s: float = 20.0,
                 factory: Callable[[DeviceRow, float | None], Any] = build_driver):
        self.db_path = db_path
        self.vault = vault
        self.poll_s = poll_s
        self.health_s = health_s
        self.beat_s = beat_s
        self.backoff_s = backoff_s
        self.realname_window_s = realname_window_s
        self.factory = factory
        self.stopping = threading.Event()
        self.lanes: dict[int, LaneConfig] = {}
        self.lane_workers: dict[int, LaneWorker] = {}
        self.devices: dict[str, DeviceRow] = {}
        self.workers: dict[str, DeviceWorker] = {}
        self._written: dict[str, tuple] = {}
        self.tests = DeviceTests(db_path)
        self._lock = threading.Lock()
        self.conn = None

    # lookups used by other threads ---------------------------------------------------------

    def turnstile_for(self, lane_id: int) -> DeviceWorker | None:
        with self._lock:
            for worker in self.workers.values():
                if worker.row.lane_id == lane_id and worker.row.kind == TURNSTILE_KIND:
                    return worker
        return None

    def _scan_from(self, device_id: str, scan: Scan) -> None:
        if self.tests.report(device_id, scan=scan):
            return
        row = self.devices.get(device_id)
        lane = self.lane_workers.get(row.lane_id) if row and row.lane_id is not None else None
        if lane is None:
            log.info("device %s: a scan, but the device belongs to no running lane", device_id)
            return
        lane.post_scan(scan)

    def _events_from(self, device_id: str, events: list[TurnstileEvent]) -> None:
        if self.tests.report(device_id, events=events):
            return
        row = self.devices.get(device_id)
        lane = self.lane_workers.get(row.lane_id) if row and row.lane_id is not None else None
        if lane is not None:
            lane.post_events(device_id, events)

    # the supervisor loop --------------------------------------------------------------------

    def run(self) -> None:
        self.conn = db_mod.connect(self.db_path)
        passages.settle_orphans(self.conn, utcnow())
        watchdog = notify.watchdog_interval()
        last_ping = last_health = last_beat = 0.0
        ready = False
        try:
            while not self.stopping.is_set():
                try:
                    self._follow_configuration()
                    self._take_commands()
                    self.tests.expire(self.conn)
                    now = time.monotonic()
                    if now - last_health >= self.health_s or self._health_changed():
                        last_health = now
                        self._write_health()
                    if now - last_beat >= self.beat_s:
                        last_beat = now
                        self._beat()
                except sqlite3.Error as exc:
                    log.error("gate runtime: database error: %s", exc)
                if not ready:
                    ready = True
                    notify.notify(f"READY=1\nSTATUS={self._status()}")
                    log.info("gate runtime running: %s", self._status())
                if watchdog and time.monotonic() - last_ping >= watchdog / 2 and self._alive():
                    last_ping = time.monotonic()
                    notify.notify(f"WATCHDOG=1\nSTATUS={self._status()}")
                self.stopping.wait(self.poll_s)
        finally:
            notify.notify("STOPPING=1")
            self._shutdown()

    def stop(self) -> None:
        self.stopping.set()

    def _alive(self) -> bool:
        now = time.monotonic()
        return all(w.is_alive() and now - w.heartbeat < 10 for w in self.lane_workers.values())

    def _status(self) -> str:
        up = sum(1 for w in self.workers.values() if w.usable)
        return f"{len(self.lane_workers)} lanes, {up}/{len(self.workers)} devices up"

    def _shutdown(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        for lane in self.lane_workers.values():
            lane.stop()
        for thread in [*self.workers.values(), *self.lane_workers.values()]:
            thread.join(timeout=5)
        try:
            passages.settle_orphans(self.conn, utcnow())
            for worker in self.workers.values():
                self._written.pop(worker.row.id, None)
                worker.state, worker.detail = DeviceState.DOWN, "gate runtime stopped"
            self._write_health()
        except sqlite3.Error as exc:
            log.error("gate runtime: could not record the stop: %s", exc)
        self.conn.close()
        log.info("gate runtime stopped")

    # configuration ----------------------------------------------------------------------------

    def _follow_configuration(self) -> None:
        lanes = {r[0]: LaneConfig(r[0], r[1], r[2], float(r[3]), bool(r[4]), r[5])
                 for r in self.conn.execute(_LANES_SQL)}
        rows = {r[0]: DeviceRow.from_db(r) for r in self.conn.execute(_DEVICES_SQL)
                if r[2] in KINDS}
        if lanes == self.lanes and {k: v.key() for k, v in rows.items()} == \
                {k: v.key() for k, v in self.devices.items()}:
            return
        # lanes first: a device's scans need its lane's thread
        wanted_lanes = {lid for lid, lane in lanes.items() if lane.enabled and any(
            r.enabled and r.lane_id == lid for r in rows.values())}
        for lane_id in list(self.lane_workers):
            if lane_id not in wanted_lanes:
                self.lane_workers.pop(lane_id).stop()
                log.info("lane %s: stopped", self.lanes[lane_id].code)
        for lane_id in wanted_lanes:
            worker = self.lane_workers.get(lane_id)
            if worker is None:
                worker = LaneWorker(lanes[lane_id], self.db_path, self.vault,
                                    lambda lid=lane_id: self.turnstile_for(lid),
                                    self.realname_window_s)
                self.lane_workers[lane_id] = worker
                worker.start()
                log.info("lane %s: running", lanes[lane_id].code)
            elif lanes[lane_id] != self.lanes.get(lane_id):
                worker.reconfigure(lanes[lane_id])
        timeouts_changed = {lid for lid, lane in lanes.items() if lid in self.lanes
                            and lane.passage_timeout_s != self.lanes[lid].passage_timeout_s}
        self.lanes = lanes
        for device_id in list(self.workers):
            row = rows.get(device_id)
            old = self.devices.get(device_id)
            if row is None or not row.enabled or old is None or row.key() != old.key() \
                    or (row.kind == TURNSTILE_KIND and row.lane_id in timeouts_changed):
                with self._lock:
                    worker = self.workers.pop(device_id)
                worker.stop()
                log.info("device %s: %s", device_id, "removed" if row is None else
                         "disabled" if not row.enabled else "configuration changed")
        for device_id, row in rows.items():
            if not row.enabled:
                if self._written.get(device_id, (None,))[0] != DeviceState.DISABLED.value:
                    self._record_state(device_id, DeviceState.DISABLED, "", {})
                continue
            if device_id in self.workers:
                continue
            lane = lanes.get(row.lane_id) if row.lane_id is not None else None
            timeout = lane.passage_timeout_s if lane else None
            worker = DeviceWorker(
                row, lambda row=row, timeout=timeout: self.factory(row, timeout),
                on_scan=lambda scan, d=device_id: self._scan_from(d, scan),
                on_events=lambda events, d=device_id: self._events_from(d, events),
                backoff=Backoff(*self.backoff_s))
            with self._lock:
                self.workers[device_id] = worker
            worker.start()
        self.devices = rows

    # device health ----------------------------------------------------------------------------

    def _health_changed(self) -> bool:
        changed = False
        for worker in self.workers.values():
            if worker.changed.is_set():
                worker.changed.clear()
                changed = True
        return changed

    def _write_health(self) -> None:
        updates = []
        for device_id, worker in list(self.workers.items()):
            state, detail, metrics = worker.snapshot()
            metrics = {k: v for k, v in metrics.items() if isinstance(v, int | float | str)
                       or v is None}
            updates.append((device_id, state, detail, metrics))
        if not updates:
            return
        with immediate(self.conn):
            for device_id, state, detail, metrics in updates:
                self._record_state(device_id, state, detail, metrics)

    def _beat(self) -> None:
        """Liveness, on a fixed beat: every device whose thread is running is reported seen."""
        alive = [(to_iso(utcnow()), device_id) for device_id, worker in
                 list(self.workers.items()) if worker.is_alive()]
        if alive:
            with immediate(self.conn):
                self.conn.executemany("UPDATE devices SET seen_at = ? WHERE id = ?", alive)

    def _record_state(self, device_id: str, state: DeviceState, detail: str,
                      metrics: dict) -> None:
        health = json.dumps(metrics, sort_keys=True, default=str)
        previous = self._written.get(device_id)
        if previous == (state.value, detail, health):
            return
        if previous is None or previous[:2] != (state.value, detail):
            now = to_iso(utcnow())
            self.conn.execute("UPDATE devices SET state = ?, state_detail = ?, state_at = ?, "
                              "seen_at = ?, health = ? WHERE id = ?",
                              (state.value, detail[:300], now, now, health, device_id))
        else:
            self.conn.execute("UPDATE devices SET health = ? WHERE id = ?", (health, device_id))
        self._written[device_id] = (state.value, detail, health)

    # commands ---------------------------------------------------------------------------------

    def _take_commands(self) -> None:
        """Carry out what the pages asked (see :mod:`edge.commands`): an opening goes to its
        lane's thread, a test to :class:`DeviceTests`."""
        for item in commands.take(self.conn):
            if item["command"] == "open_lane":
                lane = self.lane_workers.get(item["lane_id"])
                if lane is None:
                    commands.finish(self.conn, item["id"], "failed", {
                        "ok": False, "message": "the lane is not running (no enabled devices)"})
                else:
                    lane.post_command(item)
            elif item["command"] == "test":
                self.tests.start(self.conn, item, self.workers.get(item["device_id"] or ""))
            else:
                commands.finish(self.conn, item["id"], "failed", {
                    "ok": False, "message": f"unknown command {item['command']}"})


# ---------------------------------------------------------------------------------------------

def run_from_config(cfg: config_mod.Config, **options: Any) -> int:
    """Run until SIGTERM or SIGINT; the service's exit status."""
    if not Path(cfg.database).exists():
        log.error("%s: no database yet; run `wicket-edge init` first", cfg.database)
        return 2
    if db_mod.migrations.pending(db_mod.open_db(cfg.database)):
        log.error("%s: the database needs an upgrade; run `wicket-edge init`", cfg.database)
        return 2
    try:
        vault = HolderVault(cfg.holder_key)
    except HolderKeyError as exc:
        log.error("%s: holder_key: %s", cfg.path, exc)
        return 2
    runtime = GateRuntime(cfg.database, vault, **options)

    def on_signal(signum: int, frame: object) -> None:
        log.info("gate runtime: signal %s, stopping", signum)
        runtime.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runtime.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wicket-edge gates",
                                     description="Run the lanes: devices, decisions, turnstiles.")
    parser.add_argument("--config", help="configuration file")
    add_options(parser)
    args = parser.parse_args(argv)
    try:
        cfg = config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        sys.stderr.write(f"wicket-edge gates: {exc}\n")
        return 2
    logging.basicConfig(level=cfg.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return guard("wicket-edge gates", lambda: run_from_config(cfg, **options_from(args)),
                 lambda: config_mod.disk_paths(args.config))


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--poll", type=float, default=0.5,
                        help="seconds between looks at the configuration and commands")
    parser.add_argument("--backoff", type=float, nargs=2, default=(0.5, 30.0),
                        metavar=("FIRST", "MAX"), help="reconnect backoff in seconds")
    parser.add_argument("--realname-window", type=float, default=20.0, metavar="SECONDS",
                        help="how long a ticket and an ID card wait for each other at a "
                             "ticket-and-ID gate")


def options_from(args: argparse.Namespace) -> dict[str, Any]:
    return {"poll_s": args.poll, "backoff_s": tuple(args.backoff),
            "realname_window_s": args.realname_window}


if __name__ == "__main__":
    sys.exit(main())
