"""How fast the hub serves a venue's allowlist, and how big it is.

A venue with 100,000 live tickets (a fifth of them real-name); the full allowlist from cursor 0
through the sync endpoint, and an incremental pull after 1,000 changes (500 sales, 500 refunds).
In the same run, the floor: reading the same change-log rows with one raw SELECT.

    .venv/bin/python bench/hub_allowlist.py [--db URL] [--tickets 100000]

--db takes an empty database (default: a SQLite file in a temporary directory). Figures:
full_allowlist_s, full_allowlist_raw_mb, full_allowlist_gzip_mb, delta_1k_s, floor_read_s.
Targets: full <= 5 s and <= 20 MB gzip, incremental <= 0.5 s.
"""

from __future__ import annotations

import argparse
import gzip
import random
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from cloud.app import create_app  # noqa: E402
from cloud.catalog.events import create_event  # noqa: E402
from cloud.catalog.venues import add_zone, create_venue  # noqa: E402
from cloud.core.db import init_db  # noqa: E402
from cloud.fleet import appliances  # noqa: E402
from cloud.fleet.keys import activate_key, create_key  # noqa: E402
from cloud.inventory.sessions import create_session  # noqa: E402
from cloud.sales.tickets import TicketSpec, issue_tickets, revoke_ticket  # noqa: E402
from sync.sample import fake_resident_id  # noqa: E402
from sync.timeutil import utcnow  # noqa: E402

PAGE = 5000


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def pull(client, headers, since: int) -> tuple[float, int, int, int, int]:
    """Pull every page after ``since``; returns seconds, raw bytes, gzip bytes, changes, cursor."""
    bodies = []
    count = 0
    cursor, more = since, True
    t0 = time.perf_counter()
    while more:
        r = client.get(f"/api/sync/v1/allowlist?since={cursor}&limit={PAGE}", headers=headers)
        bodies.append(r.get_data())
        page = r.get_json()
        count += len(page["changes"])
        cursor, more = page["cursor"], page["more"]
    elapsed = time.perf_counter() - t0
    raw = sum(len(b) for b in bodies)
    gz = sum(len(gzip.compress(b, compresslevel=6)) for b in bodies)
    return elapsed, raw, gz, count, cursor


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", help="an empty database URL (default: a temporary SQLite file)")
    p.add_argument("--tickets", type=int, default=100_000)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    url = args.db or f"sqlite:///{work / 'hub.db'}"
    try:
        init_db(url)
        app = create_app({"DATABASE_URL": url})
        engine = app.extensions["db"]
        rng = random.Random(1)
        with engine.begin() as conn:
            activate_key(conn, create_key(conn))
            venue = create_venue(conn, "OSC", "Olympic Sports Centre")
            zones = [add_zone(conn, venue, code, f"Stand {code}") for code in "ABCD"]
            event = create_event(conn, "GAMES", "The Games")
            start = utcnow() + timedelta(days=1)
            session = create_session(conn, event, venue, "Final", start,
                                     start + timedelta(hours=3))
            token = appliances.register(conn, venue, "bench").token
        t0 = time.perf_counter()
        for done in range(0, args.tickets, 10_000):
            n = min(10_000, args.tickets - done)
            specs = [TicketSpec(session_id=session, zone_id=zones[i % 4],
                                holder=("王小明", "resident_id", fake_resident_id(rng))
                                if i % 5 == 0 else None) for i in range(n)]
            with engine.begin() as conn:
                issue_tickets(conn, specs)
            note(f"  issued {done + n} tickets")
        note(f"issued {args.tickets} tickets in {time.perf_counter() - t0:.1f}s")
        client = app.test_client()
        credential = client.post("/api/sync/v1/enroll", json={"token": token}).get_json()[
            "credential"]
        headers = {"Authorization": f"Appliance {credential}"}

        full_s, raw, gz, count, cursor = pull(client, headers, 0)
        note(f"full allowlist: {count} changes")
        t0 = time.perf_counter()
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT record FROM change_log WHERE venue_id = :v "
                                        "ORDER BY seq"), {"v": venue}).fetchall()
        floor_s = time.perf_counter() - t0
        assert len(rows) == count

        with engine.begin() as conn:
            issue_tickets(conn, [TicketSpec(session_id=session, zone_id=zones[0])
                                 for _ in range(500)])
            for ticket_id in rng.sample(range(1, args.tickets + 1), 500):
                revoke_ticket(conn, ticket_id)
        delta_s, _, _, delta_count, _ = pull(client, headers, cursor)
        note(f"incremental: {delta_count} changes")

        print(f"tickets: {args.tickets}")
        print(f"full_allowlist_s: {full_s:.2f}")
        print(f"full_allowlist_raw_mb: {raw / 1e6:.1f}")
        print(f"full_allowlist_gzip_mb: {gz / 1e6:.1f}")
        print(f"floor_read_s: {floor_s:.2f}")
        print(f"delta_1k_s: {delta_s:.3f}")
        engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
