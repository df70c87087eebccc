"""How fast the ops dashboard answers with a day's worth of entries.

Loads 1,000,000 entries across 20 venues (each with a live session, 50,000 tickets, two zones,
four gates and eight lanes, two appliances reporting devices): tickets and entries written in
bulk (COPY on PostgreSQL), the ops counters kept by the same function the entries push calls
(``cloud.ops.count_entries``), in chunks. Then times the dashboard: the main page as an ops user
gets it (``GET /ops``), its parts, and one entries push of 1,000 through the sync endpoint with
the counters kept in its transaction. In the same run, the floors: a raw ``count(*)`` of the
entries, and the dashboard's attendance numbers computed from the raw entries instead of the
counters.

    .venv/bin/python bench/ops_dashboard.py --db "$(.ci/postgres)" [--entries 1000000]

``--db`` is a PostgreSQL admin URL: a scratch database is created for the run and dropped after
it (a ``sqlite:///…`` URL is used as it is, and should name a new file). Figures, one per line:
load_s, dashboard_ms (target <= 300), dashboard_data_ms, attendance_ms, appliances_ms,
alerts_evaluate_ms, push_1000_ms, count_floor_ms, raw_attendance_ms, summary_rows.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from cloud.app import create_app  # noqa: E402
from cloud.catalog.events import create_event  # noqa: E402
from cloud.catalog.venues import add_gate, add_lane, add_zone, create_venue  # noqa: E402
from cloud.core.db import init_db, make_engine  # noqa: E402
from cloud.fleet import appliances  # noqa: E402
from cloud.fleet.keys import activate_key, create_key  # noqa: E402
from cloud.fleet.tables import entries  # noqa: E402
from cloud.inventory.sessions import create_session  # noqa: E402
from cloud.ops import alerts  # noqa: E402
from cloud.ops import attendance as ops  # noqa: E402
from cloud.ops import devices as ops_devices  # noqa: E402
from cloud.ops.pages import dashboard_data  # noqa: E402
from cloud.ops.tables import entry_minutes  # noqa: E402
from cloud.sales.tables import tickets  # noqa: E402
from cloud.staff.staff import create_staff  # noqa: E402
from sync.ids import uuid7  # noqa: E402
from sync.timeutil import to_iso, utcnow  # noqa: E402

CHUNK = 5000
PASSWORD = "bench password 1"
ENTRY_COLS = ("id", "appliance_id", "venue_id", "seq", "at", "lane", "direction", "ticket_id",
              "session_id", "admitted", "reason", "cursor", "received_at")
TICKET_COLS = ("id", "number", "kind", "role", "session_id", "scope", "venues", "zone_id",
               "key_id", "code", "state", "issued_at")


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def scratch_database(admin_url: str) -> tuple[str, callable]:
    if admin_url.startswith("sqlite"):
        return admin_url, lambda: None
    name = f"wicket_bench_ops_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return url, drop


def bulk_insert(conn: sa.Connection, table: sa.Table, cols: tuple[str, ...],
                rows: list[tuple]) -> None:
    if conn.dialect.name == "postgresql":
        cur = conn.connection.dbapi_connection.cursor()
        with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
        cur.close()
    else:
        conn.execute(sa.insert(table), [dict(zip(cols, r, strict=True)) for r in rows])


def setup(engine: sa.Engine, n_venues: int, per_venue: int, rng: random.Random) -> dict:
    now = utcnow()
    world: dict = {"venues": []}
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        key_id = conn.execute(sa.text("SELECT key_id FROM signing_keys WHERE state = 'active'")
                              ).scalar_one()
        event = create_event(conn, "CUP", "The Cup")
        create_staff(conn, "ops-bench", PASSWORD, "ops", actor="bench")
        next_ticket = 1
        for v in range(n_venues):
            venue = create_venue(conn, f"V{v:02d}", f"Venue {v:02d}")
            zone_ids = [add_zone(conn, venue, z, f"Stand {z}") for z in ("A", "B")]
            lanes = []
            for g, zone in (("N", "A"), ("E", "A"), ("S", "B")):
                add_gate(conn, venue, g, f"Gate {g}", [zone])
                for i in (1, 2):
                    add_lane(conn, venue, g, f"{g}{i}")
                    lanes.append(f"{g}{i}")
            add_gate(conn, venue, "X", "Exit", ["A", "B"])
            add_lane(conn, venue, "X", "X1", direction="out")
            add_lane(conn, venue, "X", "X2", direction="out")
            session = create_session(conn, event, venue, "Final", now + timedelta(minutes=10),
                                     now + timedelta(hours=3),
                                     gates_open_at=now - timedelta(hours=2))
            boxes = [appliances.register(conn, venue, f"Venue {v:02d} box {b}") for b in (1, 2)]
            ids = range(next_ticket, next_ticket + per_venue)
            next_ticket += per_venue
            bulk_insert(conn, tickets, TICKET_COLS, [
                (t, f"T{t:09d}", "session", "ticket", session, json.dumps([session]),
                 json.dumps([venue]), zone_ids[t % 2], key_id, "BENCH", "issued", now)
                for t in ids])
            world["venues"].append({"id": venue, "session": session, "lanes": lanes,
                                    "tickets": ids, "boxes": boxes})
    return world


def load_entries(engine: sa.Engine, world: dict, total: int, rng: random.Random) -> None:
    """Per venue: every ticket admitted once, some leave and come back, some scans refused."""
    now = utcnow()
    per_venue = total // len(world["venues"])
    done = 0
    t0 = time.perf_counter()
    for v in world["venues"]:
        rows: list[dict] = []
        unused = list(v["tickets"])
        rng.shuffle(unused)
        entered: list[int] = []
        for i in range(per_venue):
            at = now - timedelta(seconds=rng.uniform(0, 7200))
            kind = rng.random()
            if unused and (kind < 0.85 or not entered):
                t = unused.pop()
                entered.append(t)
                lane, d, ok, reason = rng.choice(v["lanes"]), "in", True, "OK"
            elif kind < 0.93:
                t, lane, d, ok, reason = (rng.choice(entered), rng.choice(("X1", "X2")), "out",
                                          True, "OK")
            elif kind < 0.97:
                t, lane, d, ok, reason = (rng.choice(entered), rng.choice(v["lanes"]), "in",
                                          False, "ALREADY_ENTERED")
            else:
                t, lane, d, ok, reason = None, rng.choice(v["lanes"]), "in", False, "UNKNOWN"
            rows.append({"id": str(uuid7()), "at": at, "lane": lane, "direction": d,
                         "ticket_id": t, "session_id": v["session"] if t else None,
                         "admitted": ok, "reason": reason, "cursor": 1, "seq": i + 1})
        rows.sort(key=lambda e: e["at"])
        box = v["boxes"][0].id
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            with engine.begin() as conn:
                bulk_insert(conn, entries, ENTRY_COLS, [
                    (e["id"], box, v["id"], e["seq"], e["at"], e["lane"], e["direction"],
                     e["ticket_id"], e["session_id"], e["admitted"], e["reason"], e["cursor"],
                     now) for e in chunk])
                ops.count_entries(conn, v["id"], chunk, [e["id"] for e in chunk])
            done += len(chunk)
            if done % 50_000 == 0:
                rate = done / (time.perf_counter() - t0)
                note(f"loaded {done:,} of {total:,} entries ({rate:,.0f}/s)")


def heartbeats(client, world: dict) -> None:
    engine = client.application.extensions["db"]
    for v in world["venues"]:
        with engine.connect() as conn:  # the appliances are caught up
            head = conn.execute(sa.text("SELECT max(seq) FROM change_log WHERE venue_id = :v"),
                                {"v": v["id"]}).scalar()
        v["auth"] = []
        for b in v["boxes"]:
            body = client.post("/api/sync/v1/enroll", json={"token": b.token}).get_json()
            v["auth"].append({"Authorization": f"Appliance {body['credential']}"})
            devices = [{"id": f"cam-{lane}", "kind": "qr_camera", "lane": lane, "state": "up",
                        "at": to_iso(utcnow())} for lane in v["lanes"]]
            r = client.post("/api/sync/v1/heartbeat", headers=v["auth"][-1], json={
                "state": {"software_version": "0.1.0", "devices": devices,
                          "cursors": {"allowlist": head},
                          "queue": {"unsent": 0, "oldest_unsent_at": None, "refused": 0}},
                "clock": to_iso(utcnow())})
            assert r.status_code == 200, r.get_data(as_text=True)


def timed(fn, runs: int = 7) -> float:
    """Median milliseconds of ``runs`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def raw_attendance(conn: sa.Connection, session_ids: list[int]) -> list:
    """The floor: the dashboard's numbers straight from the entries, no counters."""
    e = entries.c
    return conn.execute(
        sa.select(e.session_id, e.venue_id, e.lane,
                  sa.func.count().filter(sa.and_(e.admitted, e.direction == "in")),
                  sa.func.count().filter(sa.and_(e.admitted, e.direction == "out")),
                  sa.func.count().filter(sa.not_(e.admitted)),
                  sa.func.count(sa.distinct(e.ticket_id)).filter(
                      sa.and_(e.admitted, e.direction == "in")))
        .where(e.session_id.in_(session_ids)).group_by(e.session_id, e.venue_id, e.lane)).all()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="PostgreSQL admin URL (or a new sqlite:/// file)")
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--venues", type=int, default=20)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    url, drop = scratch_database(args.db)
    try:
        init_db(url)
        engine = make_engine(url)
        per_venue = max(1, args.entries // args.venues // 20) * 20
        per_venue_tickets = max(1, per_venue * 5 // 6)
        note(f"setting up {args.venues} venues, {per_venue_tickets * args.venues:,} tickets")
        t0 = time.perf_counter()
        world = setup(engine, args.venues, per_venue_tickets, rng)
        load_entries(engine, world, args.entries, rng)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        load_s = time.perf_counter() - t0

        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "b" * 48})
        client = app.test_client()
        heartbeats(client, world)
        page = client.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = client.post("/login", data={"username": "ops-bench", "password": PASSWORD,
                                        "csrf_token": csrf})
        assert r.status_code == 303, r.status_code
        hub_engine = app.extensions["db"]
        with hub_engine.connect() as conn:
            live = ops.live_sessions(conn)
            assert len(live) == args.venues
            summary_rows = conn.execute(sa.select(sa.func.count()).select_from(entry_minutes)
                                        ).scalar()
            entered = ops.attendance(conn, live)["totals"]["entries"]

        def get_dashboard():
            r = client.get("/ops")
            assert r.status_code == 200

        dashboard_ms = timed(get_dashboard)
        with hub_engine.connect() as conn:
            data_ms = timed(lambda: dashboard_data(conn, live))
            attendance_ms = timed(lambda: ops.attendance(conn, live))
            appliances_ms = timed(lambda: ops_devices.appliance_status(conn))
            raw = raw_attendance(conn, live)
            raw_ms = timed(lambda: raw_attendance(conn, live), runs=3)
            count_ms = timed(lambda: conn.execute(sa.text("SELECT count(*) FROM entries")
                                                  ).scalar(), runs=3)
        assert sum(r[3] for r in raw) == entered, "the counters and the entries disagree"

        def evaluate():
            with hub_engine.begin() as conn:
                alerts.evaluate(conn, min_interval=timedelta(0))
        evaluate_ms = timed(evaluate)

        v = world["venues"][0]
        auth = v["auth"][1]
        times = []
        for _ in range(5):
            batch = [{"id": str(uuid7()), "seq": i, "at": to_iso(utcnow()),
                      "lane": rng.choice(v["lanes"]), "direction": "in",
                      "ticket_id": rng.choice(v["tickets"]), "session_id": v["session"],
                      "admitted": True, "reason": "OK", "cursor": 1} for i in range(1000)]
            t1 = time.perf_counter()
            r = client.post("/api/sync/v1/entries", json={"entries": batch}, headers=auth)
            times.append((time.perf_counter() - t1) * 1000)
            assert r.status_code == 200 and len(r.get_json()["stored"]) == 1000
        hub_engine.dispose()
        engine.dispose()

        print(f"database: {engine.dialect.name}")
        print(f"entries: {args.entries}")
        print(f"venues: {args.venues}")
        print(f"summary_rows: {summary_rows}")
        print(f"load_s: {load_s:.1f}")
        print(f"dashboard_ms: {dashboard_ms:.1f}")
        print(f"dashboard_data_ms: {data_ms:.1f}")
        print(f"attendance_ms: {attendance_ms:.1f}")
        print(f"appliances_ms: {appliances_ms:.1f}")
        print(f"alerts_evaluate_ms: {evaluate_ms:.1f}")
        print(f"push_1000_ms: {statistics.median(times):.1f}")
        print(f"count_floor_ms: {count_ms:.1f}")
        print(f"raw_attendance_ms: {raw_ms:.1f}")
        print(f"dashboard_target_ms: 300 ({'met' if dashboard_ms <= 300 else 'missed'})")
    finally:
        drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
