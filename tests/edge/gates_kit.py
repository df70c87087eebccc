"""What the gate runtime's tests share: a venue whose session is open now, devices in the
database, a runtime in a thread or in its own process, a scripted turnstile board, and
waiting on conditions with generous deadlines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from drivers.sim.modbus_board import ModbusBoardSim
from edge import db as db_mod
from edge.allowlist import apply_changes
from edge.gates.runtime import GateRuntime
from sync import sample
from sync.changes import parse_change
from sync.timeutil import utcnow

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float = 60.0, what: str = "the condition", every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def load_venue(db_path: Path, vault, hub_key, tickets: int = 24):
    """A migrated database holding a sample venue built around the real clock (the runtime
    decides with the time of day)."""
    venue = sample.build(hub_key, utcnow(), tickets=tickets)
    conn = db_mod.connect(db_path)
    apply_changes(conn, vault, [parse_change(c) for c in venue.changes])
    return venue, conn


def add_device(conn, device_id: str, lane_id: int | None, kind: str, config: dict,
               enabled: bool = True) -> None:
    conn.execute("INSERT INTO devices (id, lane_id, kind, name, config, enabled) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
                 (device_id, lane_id, kind, device_id, json.dumps(config), int(enabled)))


def entries(conn, lane_id: int | None = None) -> list[tuple]:
    """(ticket_id, reason, admitted, passage) of every entry, oldest first."""
    sql = "SELECT ticket_id, reason, admitted, passage FROM entries"
    args: tuple = ()
    if lane_id is not None:
        sql += " WHERE lane_id = ?"
        args = (lane_id,)
    return conn.execute(sql + " ORDER BY seq", args).fetchall()


def device_state(conn, device_id: str) -> str:
    row = conn.execute("SELECT state FROM devices WHERE id = ?", (device_id,)).fetchone()
    return row[0] if row else ""


def settled(conn) -> bool:
    return conn.execute("SELECT count(*) FROM entries WHERE passage = 'pending'"
                        ).fetchone()[0] == 0


class ScriptedBoard(ModbusBoardSim):
    """The Modbus board with a person per unlock, in order: "passes", "never", "hesitates"
    (then the default ``person``)."""

    def __init__(self, *args, script=(), **kw):
        super().__init__(*args, **kw)
        self.script = list(script)

    def _unlocked(self, direction: str) -> None:
        if self.script:
            self.person = self.script.pop(0)
        super()._unlocked(direction)


class RuntimeThread:
    """The runtime in this process (for tests that need to look inside)."""

    def __init__(self, db_path, vault, **options):
        options.setdefault("poll_s", 0.1)
        options.setdefault("health_s", 0.3)
        options.setdefault("backoff_s", (0.1, 1.0))
        self.runtime = GateRuntime(db_path, vault, **options)
        self.thread = threading.Thread(target=self.runtime.run, name="runtime", daemon=True)

    def __enter__(self) -> GateRuntime:
        self.thread.start()
        return self.runtime

    def __exit__(self, *exc) -> None:
        self.runtime.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the runtime did not stop"


def write_config(tmp_path: Path, db_path: Path, holder_key: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(f'database = "{db_path}"\nholder_key = "{holder_key}"\nlog_level = "INFO"\n')
    return path


class RuntimeProcess:
    """``wicket-edge gates`` as its own process, its log kept for the test to read."""

    def __init__(self, config: Path, log_path: Path, env: dict | None = None, *args: str):
        self.log_path = log_path
        self.cmd = [sys.executable, "-m", "edge.cli", "--config", str(config), "gates",
                    "--poll", "0.2", "--backoff", "0.3", "2", *args]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> RuntimeProcess:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in __exit__)
        self.process = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=self.env, cwd=ROOT)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError("the runtime did not stop on SIGTERM") from None

    def __exit__(self, *exc) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.stop()
        finally:
            self._log.close()
