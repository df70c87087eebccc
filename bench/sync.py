"""The sync agent end to end: a real hub process on loopback, an empty appliance database.

A venue with 100,000 tickets (a fifth of them real-name). Timed, over HTTP through the agent's
own client and apply code: the full sync from cursor 0, a delta of 1,000 changes (500 sales,
500 refunds), and 10,000 entries pushed up. In the same run, the floor: the same changes read
straight from the hub database and applied to another empty appliance database, no HTTP.

    .venv/bin/python bench/sync.py [--db URL] [--tickets 100000] [--entries 10000]

Figures: full_sync_s, full_sync_mb (response bytes on the wire), full_sync_rows_s,
floor_apply_s, floor_rows_s, delta_sync_s, entries_up_s, entries_rows_s.
Targets: full <= 15 s, delta <= 1 s, 10,000 entries <= 5 s.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from cloud.catalog.events import create_event  # noqa: E402
from cloud.catalog.venues import add_gate, add_zone, create_venue  # noqa: E402
from cloud.core.changes import change_log  # noqa: E402
from cloud.core.db import init_db, make_engine  # noqa: E402
from cloud.fleet import appliances  # noqa: E402
from cloud.fleet.keys import activate_key, create_key  # noqa: E402
from cloud.inventory.sessions import create_session  # noqa: E402
from cloud.sales.tickets import TicketSpec, issue_tickets, revoke_ticket  # noqa: E402
from edge import config as config_mod  # noqa: E402
from edge import db as edge_db  # noqa: E402
from edge.allowlist import apply_changes  # noqa: E402
from edge.holders import HolderVault, generate_holder_key  # noqa: E402
from edge.uplink.agent import Agent, enroll, load_link  # noqa: E402
from sync.changes import parse_change  # noqa: E402
from sync.ids import uuid7  # noqa: E402
from sync.sample import fake_resident_id  # noqa: E402
from sync.timeutil import to_iso, utcnow  # noqa: E402


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def appliance(work: Path, name: str, key: str):
    path = work / name / "edge.toml"
    config_mod.write_new(path, {"holder_key": key, "database": "edge.db"})
    cfg = config_mod.load(path)
    edge_db.migrate(edge_db.open_db(cfg.database))
    return cfg, edge_db.connect(cfg.database)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", help="an empty hub database URL (default: a temporary SQLite file)")
    p.add_argument("--tickets", type=int, default=100_000)
    p.add_argument("--entries", type=int, default=10_000)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    url = args.db or f"sqlite:///{work / 'hub.db'}"
    hub = None
    try:
        init_db(url)
        engine = make_engine(url)
        rng = random.Random(1)
        now = utcnow()
        with engine.begin() as conn:
            activate_key(conn, create_key(conn))
            venue = create_venue(conn, "OSC", "Olympic Sports Centre")
            zones = [add_zone(conn, venue, code, f"Stand {code}") for code in "ABCD"]
            add_gate(conn, venue, "G1", "Gate 1", ["A", "B", "C", "D"])
            event = create_event(conn, "GAMES", "The Games")
            session = create_session(conn, event, venue, "Final", now - timedelta(hours=1),
                                     now + timedelta(hours=3))
            token = appliances.register(conn, venue, "bench").token
        for done in range(0, args.tickets, 10_000):
            n = min(10_000, args.tickets - done)
            specs = [TicketSpec(session_id=session, zone_id=zones[i % 4],
                                holder=("王小明", "resident_id", fake_resident_id(rng))
                                if i % 5 == 0 else None) for i in range(n)]
            with engine.begin() as conn:
                issue_tickets(conn, specs)
        note(f"issued {args.tickets} tickets")

        port = free_port()
        hub = subprocess.Popen([sys.executable, "-m", "cloud.cli", "--db", url, "serve",
                                "--bind", f"127.0.0.1:{port}", "--workers", "2"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hub_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.post(f"{hub_url}/api/sync/v1/heartbeat", json={}, timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or hub.poll() is not None:
                    raise SystemExit("the hub did not start") from None
                time.sleep(0.1)

        key = generate_holder_key()
        cfg, conn = appliance(work, "edge", key)
        enroll(cfg, conn, hub_url, token)
        agent = Agent(cfg, conn, HolderVault(key), load_link(cfg))
        t0 = time.perf_counter()
        agent.pull_allowlist()
        full_s = time.perf_counter() - t0
        full_bytes = agent.client.traffic.bytes_in
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        changes = conn.execute("SELECT changes FROM sync_state WHERE stream = 'allowlist'"
                               ).fetchone()[0]
        assert tickets == args.tickets, tickets
        note(f"full sync: {changes} changes, {tickets} tickets")

        # the floor: the same change records, applied page by page with no HTTP in between
        with engine.connect() as hub_conn:
            records = [r[0] for r in hub_conn.execute(
                sa.select(change_log.c.record).where(change_log.c.venue_id == venue)
                .order_by(change_log.c.seq))]
        _, floor_conn = appliance(work, "floor", key)
        vault = HolderVault(key)
        t0 = time.perf_counter()
        page = cfg.sync_page_size
        for start in range(0, len(records), page):
            apply_changes(floor_conn, vault, [parse_change(r) for r in records[start:start + page]],
                          received=min(page, len(records) - start))
        floor_s = time.perf_counter() - t0

        with engine.begin() as hub_conn:
            issue_tickets(hub_conn, [TicketSpec(session_id=session, zone_id=zones[0])
                                     for _ in range(500)])
            for ticket_id in rng.sample(range(1, args.tickets + 1), 500):
                revoke_ticket(hub_conn, ticket_id)
        before = agent.client.traffic.bytes_in
        t0 = time.perf_counter()
        delta_applied = agent.pull_allowlist()
        delta_s = time.perf_counter() - t0
        delta_bytes = agent.client.traffic.bytes_in - before
        note(f"delta: {delta_applied} changes applied")

        lane = conn.execute("INSERT INTO lanes (code, gate_id) VALUES ('L1', "
                            "(SELECT id FROM gates LIMIT 1)) RETURNING id").fetchone()[0]
        at = to_iso(utcnow())
        with edge_db.immediate(conn):
            conn.executemany(
                "INSERT INTO entries (id, at, day, lane_id, direction, scan_kind, scan_ref, "
                "ticket_id, session_id, admitted, reason) VALUES (?, ?, '2026-07-01', ?, 'in', "
                "'qr', 'x', ?, ?, 1, 'OK')",
                [(str(uuid7()), at, lane, 1 + i % args.tickets, session)
                 for i in range(args.entries)])
        t0 = time.perf_counter()
        sent = agent.push_entries()
        entries_s = time.perf_counter() - t0
        assert sent == args.entries
        with engine.connect() as hub_conn:
            arrived = hub_conn.execute(sa.text("SELECT count(*) FROM entries")).scalar()
        assert arrived == args.entries, arrived
        agent.client.close()

        print(f"tickets: {args.tickets}")
        print(f"full_sync_s: {full_s:.2f}")
        print(f"full_sync_mb: {full_bytes / 1e6:.1f}")
        print(f"full_sync_rows_s: {changes / full_s:.0f}")
        print(f"floor_apply_s: {floor_s:.2f}")
        print(f"floor_rows_s: {len(records) / floor_s:.0f}")
        print(f"full_sync_over_floor: {full_s / floor_s:.2f}")
        print(f"delta_sync_s: {delta_s:.3f}")
        print(f"delta_sync_kb: {delta_bytes / 1e3:.0f}")
        print(f"entries_up_s: {entries_s:.2f}")
        print(f"entries_rows_s: {args.entries / entries_s:.0f}")
        conn.close()
        floor_conn.close()
        engine.dispose()
    finally:
        if hub is not None and hub.poll() is None:
            hub.send_signal(signal.SIGTERM)
            hub.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
