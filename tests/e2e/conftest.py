"""Real processes for end-to-end tests: the hub under gunicorn on loopback, appliances set up
and synced through the ``wicket-edge`` command line, scans decided by the edge engine."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from cloud.catalog.events import create_event
from cloud.catalog.venues import add_gate, add_zone, create_venue
from cloud.core.db import init_db, make_engine
from cloud.fleet import appliances
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory.sessions import create_session
from edge import config as config_mod
from edge import db as db_mod
from edge.engine import Engine, IdDocument, Scan, ScanKind
from edge.holders import HolderVault
from sync.timeutil import utcnow

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
FAST = {"sync_revocations_s": 0.3, "sync_allowlist_s": 0.5, "sync_entries_s": 0.3,
        "heartbeat_s": 0.5, "sync_backoff_max_s": 1.0, "hub_timeout_s": 5.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float = 60.0, what: str = "",
             every: float = 0.1) -> object:
    """Ask ``condition`` every ``every`` seconds until it holds (its value), or fail after
    ``timeout``; ask a rate-limited API less often."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(every)


class HubProcess:
    """``wicket-hub serve`` on a fixed loopback port, so it can be stopped and started again;
    ``env``: settings for it beside the tests' own environment."""

    def __init__(self, db_url: str, port: int | None = None, env: dict[str, str] | None = None):
        self.db_url = db_url
        self.env = dict(env or {})
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloud.cli", "--db", self.db_url, "serve", "--bind",
             f"127.0.0.1:{self.port}", "--workers", "2"], cwd=ROOT, env={**ENV, **self.env},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.post(f"{self.url}/api/sync/v1/heartbeat", json={}, timeout=2)
                return
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow to start
                assert self.proc.poll() is None, "the hub process exited"
                time.sleep(0.1)
        raise AssertionError("the hub did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc = None


@dataclass
class HubWorld:
    """The hub's database (for set-up and for checking what arrived) and its process."""

    url: str
    engine: sa.Engine
    process: HubProcess
    venues: dict[str, dict] = field(default_factory=dict)
    event_id: int = 0

    def begin(self):
        return self.engine.begin()

    def add_venue(self, code: str) -> dict:
        now = utcnow()
        with self.begin() as conn:
            venue = create_venue(conn, code, f"Venue {code}")
            add_zone(conn, venue, "A", "Zone A")
            gate = add_gate(conn, venue, "G1", "Gate 1", ["A"])
            session = create_session(conn, self.event_id, venue, "Match",
                                     now - timedelta(minutes=10), now + timedelta(hours=3))
        self.venues[code] = {"id": venue, "gate": gate, "session": session}
        return self.venues[code]

    def token(self, venue: dict, name: str = "box") -> str:
        with self.begin() as conn:
            return appliances.register(conn, venue["id"], name).token

    def hub_entries(self) -> list[tuple]:
        with self.begin() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT id, appliance_id, ticket_id, admitted FROM entries ORDER BY id"))]

    def conflicts(self) -> list[tuple]:
        with self.begin() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT kind, ticket_id FROM conflicts ORDER BY id"))]


@pytest.fixture
def hub(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    init_db(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        event = create_event(conn, "CUP", "The Cup")
    process = HubProcess(url)
    process.start()
    world = HubWorld(url, engine, process, event_id=event)
    yield world
    process.stop()
    engine.dispose()


class Appliance:
    """One appliance: its config, database and command line; the sync agent as a process."""

    def __init__(self, directory: Path, settings: dict | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "edge.toml"
        r = self.cli("init")
        assert r.returncode == 0, r.stderr
        if settings is not None:
            lines = [line for line in self.config.read_text().splitlines()
                     if line.split("=", 1)[0].strip() not in settings]
            lines += [f"{key} = {value!r}" for key, value in settings.items()]
            self.config.write_text("\n".join(lines) + "\n")
        self.cfg = config_mod.load(self.config)
        self.agent: subprocess.Popen | None = None
        self._engine: Engine | None = None

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(self.config),
                               *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                              timeout=timeout)

    def connect(self) -> sqlite3.Connection:
        return db_mod.connect(self.cfg.database)

    def add_lane(self, code: str = "L1") -> None:
        """Lanes are set up on the appliance, against a gate the hub sent."""
        conn = self.connect()
        try:
            gate = conn.execute("SELECT id FROM gates ORDER BY id LIMIT 1").fetchone()[0]
            conn.execute("INSERT INTO lanes (code, gate_id, direction) VALUES (?, ?, 'in')",
                         (code, gate))
        finally:
            conn.close()

    def scan(self, code: str, lane: str = "L1", document: IdDocument | None = None):
        """A QR code read at ``lane``, with the ID card shown with it, if any."""
        if self._engine is None:
            self._engine = Engine(self.connect(), HolderVault(self.cfg.holder_key))
        return self._engine.decide(Scan(ScanKind.QR, code, document=document), lane)

    def query(self, sql: str, *args) -> list[tuple]:
        conn = self.connect()
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def start_agent(self) -> None:
        self.agent = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "--config", str(self.config), "sync"], cwd=ROOT,
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop_agent(self) -> tuple[int, str]:
        assert self.agent is not None
        if self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
        code = self.agent.wait(timeout=60)
        err = self.agent.stderr.read()
        self.agent.stderr.close()
        self.agent = None
        return code, err

    def close(self) -> None:
        if self.agent is not None:
            self.stop_agent()
        if self._engine is not None:
            self._engine.conn.close()


@pytest.fixture
def make_appliance(tmp_path):
    made: list[Appliance] = []

    def make(name: str = "edge", settings: dict | None = None) -> Appliance:
        a = Appliance(tmp_path / name, FAST if settings is None else settings)
        made.append(a)
        return a

    yield make
    for a in made:
        a.close()
