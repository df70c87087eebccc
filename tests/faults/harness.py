"""The world a fault run plays in: a real hub process, one appliance, lanes that scan, and the
checks that say whether anything was lost, doubled or let in.

- :class:`Hub` — a hub database (SQLite file, or a PostgreSQL URL) with one venue, a seated
  zone, a gate and an open session, served by ``wicket-hub serve`` (gunicorn) on loopback. The
  run sells, refunds and moves seats through the hub's own functions on that database, while
  the process serves the appliance.
- :class:`Edge` — an appliance directory (config, database) driven through ``wicket-edge``:
  ``init``, ``enroll``, the long-running ``sync`` agent (killed and restarted at will) and
  ``sync --once``. An observer table, filled by triggers, notes when each revocation reached
  the appliance (as the highest entry sequence number at that moment).
- :class:`Scanner` — a lane thread deciding scans through the validation engine on the
  appliance database, as the gates process would.
- :func:`check` — the invariants, run after a clean round: no entry lost, none stored twice,
  the allowlist identical to the hub's (cursor, checksum, content) and no ticket admitted
  after its revocation had reached the appliance.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

from cloud.catalog.events import create_event
from cloud.catalog.tables import sessions
from cloud.catalog.venues import add_gate, add_zone, create_venue
from cloud.core.changes import change_log, last_seq
from cloud.core.db import init_db, make_engine
from cloud.core.trust import signing_keys
from cloud.fleet import appliances as appliance_mod
from cloud.fleet.keys import activate_key, create_key
from cloud.fleet.tables import appliances, entries
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.inventory.tables import session_seats
from cloud.ops.tables import conflicts
from cloud.sales.tables import tickets
from cloud.sales.tickets import TicketSpec, issue_tickets, revoke_ticket
from edge import db as edge_db
from edge.engine import Engine, Scan, ScanKind
from edge.holders import HolderVault
from sync import codes as codes_mod
from sync.sample import GIVEN, SURNAMES, fake_resident_id
from sync.timeutil import utcnow

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SYNC_PREFIX = "/api/sync/v1"
LANES = (("L1", "in"), ("L2", "in"), ("X1", "out"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, deadline: float, what: str, interval: float = 0.05):
    """Poll ``condition`` until it returns something true; raise naming ``what`` at the end."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"gave up waiting for {what} after {deadline:.0f} s")
        time.sleep(interval)


# -- the hub ------------------------------------------------------------------------------------


@dataclass
class Ticket:
    id: int
    code: str
    state: str = "issued"
    seat_id: int | None = None


class Hub:
    """The hub database and its served process. Ticket bookkeeping is the run's own (what it
    sold, refunded and moved), used to pick what to scan; the checks read the hub database."""

    def __init__(self, workdir: Path, url: str | None = None, tickets: int = 200,
                 seats: int = 6000, workers: int = 2):
        self.workdir = workdir
        self.url = url or f"sqlite:///{workdir / 'hub.db'}"
        self.workers = workers
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.tickets: dict[int, Ticket] = {}
        self.revoked_order: list[int] = []
        self.lock = threading.Lock()
        init_db(self.url)
        self.engine = make_engine(self.url)
        with self.engine.begin() as conn:
            activate_key(conn, create_key(conn))
            self.venue_id = create_venue(conn, "FLT", "Fault Test Arena")
            add_zone(conn, self.venue_id, "A", "Stand A")
            per_row = 50
            lines = ["level,zone,row,number,category"]
            lines += [f"L1,A,R{i // per_row:03d},{i % per_row + 1},a" for i in range(seats)]
            report = import_seats_csv(conn, self.venue_id, "\n".join(lines) + "\n")
            assert report.ok, report.errors[:3]
            self.gate_id = add_gate(conn, self.venue_id, "G1", "Gate 1", ["A"])
            event = create_event(conn, "FAULTS", "Fault run")
            start = utcnow() - timedelta(hours=1)
            self.session_id = create_session(conn, event, self.venue_id, "All day", start,
                                             start + timedelta(days=2))
            reg = appliance_mod.register(conn, self.venue_id, "Fault box")
            self.appliance_id, self.token = reg.id, reg.token
        self.sell(random.Random(0), tickets)

    # the process -----------------------------------------------------------------------------

    def start(self) -> None:
        self.port = free_port()
        self.log = open(self.workdir / "hub.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloud.cli", "--db", self.url, "serve", "--bind",
             f"127.0.0.1:{self.port}", "--workers", str(self.workers)],
            cwd=ROOT, env=ENV, stdout=self.log, stderr=subprocess.STDOUT)

        def up() -> bool:
            assert self.proc.poll() is None, f"the hub exited: see {self.workdir / 'hub.log'}"
            try:
                return requests.post(f"{self.base}/heartbeat", json={}, timeout=10
                                     ).status_code == 401
            except requests.RequestException:  # not listening yet, or too busy to answer
                return False

        wait_for(up, 60, "the hub to answer")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{SYNC_PREFIX}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        if self.proc is not None:
            self.log.close()
        self.engine.dispose()

    # what the box office does ------------------------------------------------------------------

    def _free_seats(self, conn, n: int, rng: random.Random) -> list[int]:
        free = [r[0] for r in conn.execute(
            sa.select(session_seats.c.seat_id).where(
                session_seats.c.session_id == self.session_id,
                session_seats.c.status == "available", session_seats.c.category == "sellable")
            .order_by(session_seats.c.seat_id).limit(max(200, n * 4)))]
        return rng.sample(free, min(n, len(free)))

    def _spec(self, rng: random.Random, seat_id: int | None) -> TicketSpec:
        holder = None
        if rng.random() < 0.2:
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
            holder = (name, "resident_id", fake_resident_id(rng))
        return TicketSpec(session_id=self.session_id, seat_id=seat_id, holder=holder)

    def sell(self, rng: random.Random, n: int = 1) -> list[int]:
        with self.engine.begin() as conn:
            seats = self._free_seats(conn, n, rng)
            specs = [self._spec(rng, seats[i] if i < len(seats) and rng.random() < 0.8 else None)
                     for i in range(n)]
            issued = issue_tickets(conn, specs)
        with self.lock:
            for spec, t in zip(specs, issued, strict=True):
                self.tickets[t.id] = Ticket(t.id, t.code, seat_id=spec.seat_id)
        return [t.id for t in issued]

    def refund(self, ticket_id: int) -> None:
        with self.engine.begin() as conn:
            # a supervisor's refund: the ticket may have admitted someone already
            revoke_ticket(conn, ticket_id, "refunded", supervisor=True,
                          reason="fault run: refund after entry")
        self._revoked(ticket_id, "refunded")

    def move(self, ticket_id: int, rng: random.Random) -> int:
        """A seat change: the old ticket is voided and a new one issued on another seat, in one
        transaction (the appliance gets the revocation and the new ticket together)."""
        with self.engine.begin() as conn:
            revoke_ticket(conn, ticket_id, "void")
            seats = self._free_seats(conn, 1, rng)
            new = issue_tickets(conn, [self._spec(rng, seats[0] if seats else None)])[0]
        self._revoked(ticket_id, "void")
        with self.lock:
            self.tickets[new.id] = Ticket(new.id, new.code, seat_id=seats[0] if seats else None)
        return new.id

    def _revoked(self, ticket_id: int, state: str) -> None:
        with self.lock:
            self.tickets[ticket_id].state = state
            self.revoked_order.append(ticket_id)

    def live(self) -> list[int]:
        with self.lock:
            return [t.id for t in self.tickets.values() if t.state == "issued"]


# -- the appliance ------------------------------------------------------------------------------


OBSERVER = """
CREATE TABLE IF NOT EXISTS fault_revocations_seen (
    ticket_id        INTEGER PRIMARY KEY,
    after_entry_seq  INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS fault_seen_revocation_insert AFTER INSERT ON revocations BEGIN
    INSERT OR IGNORE INTO fault_revocations_seen VALUES (NEW.ticket_id,
        coalesce((SELECT max(seq) FROM entries), 0));
END;
CREATE TRIGGER IF NOT EXISTS fault_seen_revocation_update AFTER UPDATE ON revocations BEGIN
    INSERT OR IGNORE INTO fault_revocations_seen VALUES (NEW.ticket_id,
        coalesce((SELECT max(seq) FROM entries), 0));
END;
CREATE TRIGGER IF NOT EXISTS fault_seen_ticket_insert AFTER INSERT ON tickets
WHEN NEW.state <> 'issued' BEGIN
    INSERT OR IGNORE INTO fault_revocations_seen VALUES (NEW.id,
        coalesce((SELECT max(seq) FROM entries), 0));
END;
CREATE TRIGGER IF NOT EXISTS fault_seen_ticket_update AFTER UPDATE OF state ON tickets
WHEN NEW.state <> 'issued' BEGIN
    INSERT OR IGNORE INTO fault_revocations_seen VALUES (NEW.id,
        coalesce((SELECT max(seq) FROM entries), 0));
END;
"""


@dataclass
class Completed:
    returncode: int
    output: str


class Edge:
    """One appliance, driven through its command line like a field tech and systemd would."""

    def __init__(self, workdir: Path, settings: dict[str, object] | None = None,
                 warm: bool = True):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "edge.toml"
        self.agent: subprocess.Popen | None = None
        self.agent_log_path = workdir / "agent.log"
        self.starts = 0
        self.killed = False
        self._agent_log_at = 0  # where the running agent's part of the log begins
        self.warm = warm
        self._spare: subprocess.Popen | None = None
        r = self.run("init")
        assert r.returncode == 0, r.output
        text = self.config.read_text(encoding="utf-8")
        if settings:
            lines = [line for line in text.splitlines()
                     if line.split("=", 1)[0].strip() not in settings]
            lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
            text = "\n".join(lines) + "\n"
            self.config.write_text(text, encoding="utf-8")
        self.holder_key = next(line.split("=", 1)[1].strip().strip('"')
                               for line in text.splitlines() if line.startswith("holder_key"))
        self.db_path = workdir / "edge.db"
        conn = self.connect()
        try:
            conn.executescript(OBSERVER)
        finally:
            conn.close()

    def connect(self) -> sqlite3.Connection:
        return edge_db.connect(self.db_path)

    def _cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "edge.cli", "--config", str(self.config), *args]

    def run(self, *args: str, timeout: float = 120) -> Completed:
        r = subprocess.run(self._cmd(*args), cwd=ROOT, env=ENV, capture_output=True, text=True,
                           timeout=timeout)
        return Completed(r.returncode, r.stdout + r.stderr)

    def enroll(self, hub_url: str, token: str) -> Completed:
        return self.run("enroll", "--hub", hub_url, "--token", token)

    def sync_once(self, timeout: float = 120) -> Completed:
        if not self.warm:
            return self.run("sync", "--once", timeout=timeout)
        start = self.agent_log_path.stat().st_size if self.agent_log_path.exists() else 0
        proc = self._launch(["sync", "--once"], "sync --once")
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait(timeout=30)
        with self.agent_log_path.open("rb") as f:
            f.seek(start)
            return Completed(rc, f.read().decode("utf-8", "replace"))

    def status(self) -> dict:
        r = self.run("status", "--json")
        assert r.returncode == 0, r.output
        return json.loads(r.output[r.output.index("{"):])

    def add_lanes(self, gate_id: int) -> None:
        """Lanes are the appliance's own configuration (the hub sends gates, not lanes)."""
        conn = self.connect()
        try:
            with edge_db.immediate(conn):
                for i, (code, direction) in enumerate(LANES, start=1):
                    conn.execute("INSERT OR IGNORE INTO lanes (id, code, name, gate_id, direction)"
                                 " VALUES (?, ?, ?, ?, ?)", (i, code, code, gate_id, direction))
        finally:
            conn.close()

    # the long-running agent ------------------------------------------------------------------

    def _spare_process(self) -> subprocess.Popen:
        log = self.agent_log_path.open("ab")
        with log:
            return subprocess.Popen([sys.executable, "-m", "tests.faults.warm_agent"], cwd=ROOT,
                                    env=ENV, stdin=subprocess.PIPE, stdout=log,
                                    stderr=subprocess.STDOUT)

    def _launch(self, args: list[str], what: str) -> subprocess.Popen:
        """A ``wicket-edge`` process running ``args``: the spare that has its imports done
        (and a new spare behind it), or a cold start."""
        self.starts += 1
        with self.agent_log_path.open("ab") as log:
            log.write(f"--- {what} (start {self.starts})\n".encode())
        if not self.warm:
            with self.agent_log_path.open("ab") as log:
                return subprocess.Popen(self._cmd(*args), cwd=ROOT, env=ENV, stdout=log,
                                        stderr=subprocess.STDOUT)
        proc = self._spare if self._spare is not None else self._spare_process()
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(["--config", str(self.config), *args]).encode() + b"\n")
        proc.stdin.close()
        self._spare = self._spare_process()
        return proc

    def close(self) -> None:
        """Stop the spare process (the agent itself is stopped with :meth:`stop_agent`)."""
        if self._spare is not None:
            assert self._spare.stdin is not None
            self._spare.stdin.close()
            self._spare.wait(timeout=60)
            self._spare = None

    def start_agent(self) -> None:
        assert not self.agent_alive()
        self.killed = False
        self._agent_log_at = self._agent_log_size()
        self.agent = self._launch(["sync"], "agent")

    def _agent_log_size(self) -> int:
        return self.agent_log_path.stat().st_size if self.agent_log_path.exists() else 0

    def agent_installed_its_handlers(self) -> bool:
        """Whether the running agent got far enough to handle SIGTERM itself: it says "sync
        agent started" after. Before, a SIGTERM kills it by the default action, which loses
        nothing (it has not opened a transaction) but is no clean exit either."""
        with self.agent_log_path.open("rb") as f:
            f.seek(self._agent_log_at)
            return b"sync agent st" in f.read()

    def agent_alive(self) -> bool:
        return self.agent is not None and self.agent.poll() is None

    def kill_agent(self, sig: int = signal.SIGKILL) -> bool:
        """Send ``sig``; True if the agent was running. Safe from any thread."""
        proc = self.agent
        if proc is None or proc.poll() is not None:
            return False
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            return False
        self.killed = True
        return True

    def reap(self) -> str | None:
        """Collect a stopped agent. Returns what went wrong if it stopped on its own (it must
        only ever stop because it was told to)."""
        problem = None
        if self.agent is not None:
            rc = self.agent.wait(timeout=30)
            if not (self.killed and rc == -signal.SIGKILL):
                problem = f"the agent exited by itself with status {rc} (see its log)"
            self.agent = None
        return problem

    def restart_agent(self) -> str | None:
        """Reap the stopped agent (see :meth:`reap`) and start a new one."""
        problem = self.reap()
        self.start_agent()
        return problem

    def stop_agent(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        proc = self.agent
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            self.killed = True
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait(timeout=timeout)
        self.agent = None
        return rc


# -- lanes that scan -----------------------------------------------------------------------------


class Scanner(threading.Thread):
    """Decides scans through the engine on the appliance database until stopped: mostly live
    tickets, often tickets revoked lately (the ones a fault could let through), some twice,
    some codes that are no ticket at all."""

    def __init__(self, edge: Edge, hub: Hub, seed: int, pause: tuple[float, float]):
        super().__init__(name="scanner", daemon=True)
        self.edge, self.hub = edge, hub
        self.rng = random.Random(seed)
        self.pause = pause
        self.halt = threading.Event()
        self.decisions: Counter = Counter()
        self.error: BaseException | None = None

    def pick(self) -> tuple[str, str]:
        rng = self.rng
        with self.hub.lock:
            recent = self.hub.revoked_order[-20:]
            count = len(self.hub.tickets)
            ids = list(self.hub.tickets)
            lane = "X1" if rng.random() < 0.05 else rng.choice(("L1", "L2"))
            u = rng.random()
            if u < 0.3 and recent:
                t = self.hub.tickets[rng.choice(recent)]
            elif u < 0.95 and count:
                t = self.hub.tickets[ids[-1 - min(int(rng.expovariate(1 / 40)), count - 1)]]
            else:
                return lane, rng.choice(("NOT-A-TICKET", "T999999999", "0" * 120))
        return lane, t.code

    def run(self) -> None:
        conn = self.edge.connect()
        engine = Engine(conn, HolderVault(self.edge.holder_key))
        try:
            while not self.halt.is_set():
                lane, code = self.pick()
                d = engine.decide(Scan(ScanKind.QR, code, device_id="fault-lane"), lane)
                self.decisions[str(d.reason)] += 1
                self.halt.wait(self.rng.uniform(*self.pause))
        except BaseException as e:  # noqa: BLE001 - handed to the run, which reports it
            self.error = e
        finally:
            conn.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)
        if self.error is not None:
            raise RuntimeError(f"the scanning lane failed: {self.error!r}") from self.error


# -- the invariants -------------------------------------------------------------------------------


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    edge_entries: int = 0
    hub_entries: int = 0
    acked_duplicates: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def _sample(items, n: int = 3) -> str:
    items = sorted(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def _allowlist_checksum(hub: Hub, credential: str | None, cursor: int) -> int | None:
    """The checksum the hub's own endpoint gives for this cursor (None without a credential)."""
    if not credential:
        return None
    r = requests.get(f"{hub.base}/allowlist", params={"since": cursor},
                     headers={"Authorization": f"Appliance {credential}"}, timeout=30)
    if r.status_code != 200:
        return -r.status_code
    body = r.json()
    if body["changes"] or body["more"]:
        return -1
    return body["checksum"]["changes"]


def check(hub: Hub, edge: Edge, credential: str | None = None,
          edge_checksum: int | None = None) -> Report:
    """The invariants after a clean round (see the module docstring). Each failure is one line
    saying what broke and for which ids."""
    rep = Report()
    fail = rep.failures.append
    conn = edge.connect()
    try:
        edge_rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, seq, ticket_id, admitted, reason, direction, acked_at FROM entries")}
        edge_tickets = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, number, code_digest, seat_id, zone_id, kind, state FROM tickets")}
        edge_revoked = dict(conn.execute("SELECT ticket_id, reason FROM revocations"))
        edge_sessions = dict(conn.execute("SELECT id, name FROM sessions"))
        edge_keys = {k: (p, r is not None) for k, p, r in conn.execute(
            "SELECT key_id, public_key, retired_at FROM hub_keys")}
        edge_cursor = conn.execute(
            "SELECT cursor FROM sync_state WHERE stream = 'allowlist'").fetchone()[0]
        violations = conn.execute(
            "SELECT e.id, e.ticket_id, e.seq, r.after_entry_seq FROM entries e "
            "JOIN fault_revocations_seen r ON r.ticket_id = e.ticket_id "
            "WHERE e.admitted = 1 AND e.direction = 'in' AND e.seq > r.after_entry_seq"
        ).fetchall()
        rep.acked_duplicates = conn.execute(
            "SELECT count(*) FROM entries WHERE ack_status = 'duplicate'").fetchone()[0]
    finally:
        conn.close()

    with hub.engine.connect() as hc:
        hub_rows = hc.execute(sa.select(
            entries.c.id, entries.c.seq, entries.c.ticket_id, entries.c.admitted,
            entries.c.reason, entries.c.direction).where(
            entries.c.appliance_id == hub.appliance_id)).all()
        hub_tickets = {r.id: r for r in hc.execute(sa.select(
            tickets.c.id, tickets.c.number, tickets.c.code, tickets.c.seat_id, tickets.c.zone_id,
            tickets.c.kind, tickets.c.state, tickets.c.venues))
            if hub.venue_id in (r.venues or [])}
        hub_sessions = dict(hc.execute(sa.select(sessions.c.id, sessions.c.name)
                                       .where(sessions.c.venue_id == hub.venue_id)).all())
        hub_keys = {k: (p, r is not None) for k, p, r in hc.execute(
            sa.select(signing_keys.c.key_id, signing_keys.c.public_key,
                      signing_keys.c.retired_at))}
        venue_last = hc.execute(sa.select(sa.func.max(change_log.c.seq))
                                .where(change_log.c.venue_id == hub.venue_id)).scalar() or 0
        hub_top = last_seq(hc, hub.venue_id)
        bad_conflicts = hc.execute(sa.select(conflicts.c.ticket_id, conflicts.c.entry_ids)
                                   .where(conflicts.c.kind == "admitted_after_revocation")).all()
        state = hc.execute(sa.select(appliances.c.state)
                           .where(appliances.c.id == hub.appliance_id)).scalar()

    rep.edge_entries, rep.hub_entries = len(edge_rows), len(hub_rows)
    # 1. no entry lost, each arrived whole, and the appliance knows it arrived
    hub_by_id: dict[str, tuple] = {}
    twice: set[str] = set()
    for r in hub_rows:
        if r.id in hub_by_id:
            twice.add(r.id)
        hub_by_id[r.id] = (r.seq, r.ticket_id, bool(r.admitted), r.reason, r.direction)
    lost = set(edge_rows) - set(hub_by_id)
    if lost:
        fail(f"lost: {len(lost)} entries recorded at the appliance are not at the hub: "
             f"{_sample(lost)}")
    phantom = set(hub_by_id) - set(edge_rows)
    if phantom:
        fail(f"phantom: {len(phantom)} entries at the hub are unknown to the appliance: "
             f"{_sample(phantom)}")
    altered = [i for i in set(edge_rows) & set(hub_by_id)
               if (edge_rows[i][0], edge_rows[i][1], bool(edge_rows[i][2]), edge_rows[i][3],
                   edge_rows[i][4]) != hub_by_id[i]]
    if altered:
        fail(f"altered: {len(altered)} entries differ between appliance and hub: "
             f"{_sample(altered)}")
    unacked = [i for i, r in edge_rows.items() if r[5] is None]
    if unacked:
        fail(f"unacknowledged: {len(unacked)} entries still queued after a clean round: "
             f"{_sample(unacked)}")
    # 2. none stored twice: one row per id, and one per appliance sequence number
    by_seq = Counter(r.seq for r in hub_rows)
    twice |= {r.id for r in hub_rows if by_seq[r.seq] > 1}
    if twice:
        fail(f"stored twice: {len(twice)} entries are at the hub more than once: "
             f"{_sample(twice)}")
    # 3. the allowlist is the hub's
    if state != "active":
        fail(f"appliance is {state} at the hub")
    if not venue_last <= edge_cursor <= hub_top:
        fail(f"cursor: the appliance is at {edge_cursor}, the venue's last change is "
             f"{venue_last} and the hub's log is at {hub_top}")
    hub_checksum = _allowlist_checksum(hub, credential, edge_cursor)
    if hub_checksum is not None and hub_checksum < -1:
        fail(f"checksum: the hub answers {-hub_checksum} to an allowlist pull from the "
             f"appliance's cursor {edge_cursor}")
    elif hub_checksum == -1:
        fail(f"checksum: the hub has changes after the appliance's cursor {edge_cursor}")
    elif edge_checksum is not None and hub_checksum is not None and hub_checksum != edge_checksum:
        fail(f"checksum: the appliance counts {edge_checksum}, the hub {hub_checksum} at cursor "
             f"{edge_cursor}")
    want = {i: (t.number, codes_mod.digest(t.code), t.seat_id, t.zone_id or 0, t.kind)
            for i, t in hub_tickets.items()}
    have = {i: t[:5] for i, t in edge_tickets.items()}
    missing, extra = set(want) - set(have), set(have) - set(want)
    differ = [i for i in set(want) & set(have) if want[i] != have[i]]
    if missing or extra or differ:
        fail(f"tickets: {len(missing)} missing at the appliance ({_sample(missing)}), "
             f"{len(extra)} unknown to the hub ({_sample(extra)}), {len(differ)} different "
             f"({_sample(differ)})")
    want_state = {i: t.state for i, t in hub_tickets.items()}
    have_state = {i: edge_revoked.get(i, t[5]) for i, t in edge_tickets.items()}
    have_state.update({i: r for i, r in edge_revoked.items() if i not in have_state})
    wrong = [i for i in want_state if have_state.get(i) != want_state[i]]
    if wrong:
        i = sorted(wrong)[0]
        fail(f"states: {len(wrong)} tickets differ, e.g. ticket {i} is {want_state[i]} at the "
             f"hub and {have_state.get(i)} at the appliance")
    want_revoked = {i: s for i, s in want_state.items() if s != "issued"}
    if edge_revoked != want_revoked:
        diff = set(edge_revoked.items()) ^ set(want_revoked.items())
        fail(f"revocations: {len(diff)} differ between appliance and hub: "
             f"{_sample(i for i, _ in diff)}")
    if edge_sessions != hub_sessions:
        fail(f"sessions differ: appliance {sorted(edge_sessions)}, hub {sorted(hub_sessions)}")
    if edge_keys != hub_keys:
        fail(f"keys differ: appliance {sorted(edge_keys)}, hub {sorted(hub_keys)}")
    # 4. nothing admitted once its revocation was known
    if violations:
        e = violations[0]
        fail(f"admitted after revocation: {len(violations)} entries, e.g. entry {e[0]} admitted "
             f"ticket {e[1]} as entry #{e[2]}, after the revocation arrived at entry #{e[3]}")
    if bad_conflicts:
        fail(f"the hub reports {len(bad_conflicts)} admissions made with a cursor that carried "
             f"the revocation: tickets {_sample(c.ticket_id for c in bad_conflicts)}")
    return rep
