"""How fast the validation engine decides, against the floor of a durable SQLite write.

A database of 100,000 tickets; 20,000 decisions (80 % first scans, 10 % repeats, 5 % forged,
5 % revoked) with ``synchronous=FULL``. In the same run, on the same file system, the floor:
a raw sqlite3 loop doing one indexed SELECT + UPDATE + INSERT per durable transaction.

    .venv/bin/python bench/edge_decide.py [--tickets 100000] [--decisions 20000] [--dir DIR]

Decisions and floor transactions alternate in 20 rounds on the same disk; ratio_to_floor is
the median of the rounds' ratios (fsync times on a shared disk swing from round to round).
Prints one figure per line: decide_per_s, decide_p50_ms, decide_p99_ms, floor_per_s,
floor_p50_ms, floor_p99_ms, ratio_to_floor. Targets: ratio_to_floor >= 0.6, decide_p99_ms <= 2.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge import db as db_mod  # noqa: E402
from edge.allowlist import apply_changes  # noqa: E402
from edge.engine import Engine, Scan, ScanKind  # noqa: E402
from edge.holders import HolderVault, generate_holder_key  # noqa: E402
from sync import sample  # noqa: E402
from sync.changes import parse_change  # noqa: E402
from sync.keys import generate_signing_key  # noqa: E402

NOW = datetime(2026, 7, 1, 2, 30, tzinfo=UTC)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build(path: Path, tickets: int, now: datetime = NOW, holder_key: str | None = None):
    key = generate_signing_key(1)
    vault = HolderVault(holder_key or generate_holder_key())
    t0 = time.perf_counter()
    venue = sample.build(key, now, tickets=tickets, realname_every=10)
    note(f"built {tickets} signed tickets in {time.perf_counter() - t0:.1f}s")
    db = db_mod.open_db(path)
    db_mod.migrate(db)
    conn = db_mod.connect(path)
    changes = [parse_change(c) for c in venue.changes]
    t0 = time.perf_counter()
    for start in range(0, len(changes), 5000):
        apply_changes(conn, vault, changes[start:start + 5000])
    note(f"loaded {len(changes)} changes in {time.perf_counter() - t0:.1f}s")
    return venue, vault, conn


def workload(venue, conn, vault, decisions: int, rng: random.Random) -> list[str]:
    ids = sorted(t for t in venue.tickets if 1001 <= t < 900000)
    rng.shuffle(ids)
    n_first, n_repeat = int(decisions * 0.8), int(decisions * 0.1)
    n_forged = int(decisions * 0.05)
    n_revoked = decisions - n_first - n_repeat - n_forged
    first = ids[:n_first]
    revoked = ids[n_first:n_first + n_revoked]
    apply_changes(conn, vault, [
        parse_change({"seq": 10_000_000 + i, "type": "revocation", "op": "upsert",
                      "ticket_id": t, "reason": "refunded"}) for i, t in enumerate(revoked)])
    scans = [venue.tickets[t].code for t in first]
    for t in rng.sample(first, n_forged):
        code = venue.tickets[t].code
        i = rng.randrange(20, len(code))
        scans.append(code[:i] + ("7" if code[i] != "7" else "8") + code[i + 1:])
    scans += [venue.tickets[t].code for t in revoked]
    rng.shuffle(scans)
    # each repeat goes somewhere after the first scan of its ticket
    for t in rng.sample(first, n_repeat):
        code = venue.tickets[t].code
        scans.insert(rng.randrange(scans.index(code) + 1, len(scans) + 1), code)
    return scans


ROUNDS = 20


def run_decide(engine: Engine, scans: list[str], latencies: list[float],
               reasons: dict[str, int], now: datetime = NOW) -> float:
    t_start = time.perf_counter()
    for code in scans:
        t0 = time.perf_counter()
        d = engine.decide(Scan(ScanKind.QR, code, device_id="bench"), "C1", now)
        latencies.append(time.perf_counter() - t0)
        reasons[d.reason] = reasons.get(d.reason, 0) + 1
    return time.perf_counter() - t_start


class Floor:
    """The floor: one indexed SELECT + UPDATE + INSERT per durable transaction, raw sqlite3."""

    def __init__(self, path: Path, tickets: int):
        self.tickets = tickets
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, code TEXT UNIQUE, "
                          "used INTEGER)")
        self.conn.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, ticket_id INTEGER, "
                          "at TEXT)")
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO tickets VALUES (?, ?, 0)",
                              ((i, f"CODE{i:012d}") for i in range(tickets)))
        self.conn.execute("COMMIT")
        self.rng = random.Random(2)

    def run(self, n: int, latencies: list[float]) -> float:
        conn = self.conn
        t0 = time.perf_counter()
        for _ in range(n):
            t1 = time.perf_counter()
            code = f"CODE{self.rng.randrange(self.tickets):012d}"
            conn.execute("BEGIN IMMEDIATE")
            (tid, used) = conn.execute("SELECT id, used FROM tickets WHERE code = ?",
                                       (code,)).fetchone()
            conn.execute("UPDATE tickets SET used = used + 1 WHERE id = ?", (tid,))
            conn.execute("INSERT INTO entries (ticket_id, at) VALUES (?, ?)", (tid, "now"))
            conn.execute("COMMIT")
            latencies.append(time.perf_counter() - t1)
        return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tickets", type=int, default=100_000)
    p.add_argument("--decisions", type=int, default=20_000)
    p.add_argument("--dir", default=None,
                   help="where to put the databases (default: a temporary directory under the "
                   "repository, i.e. on the file system the appliance data would live on)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=args.dir or ROOT))
    try:
        venue, vault, conn = build(work / "edge.db", args.tickets)
        rng = random.Random(1)
        scans = workload(venue, conn, vault, args.decisions, rng)
        engine = Engine(conn, vault)
        floor = Floor(work / "floor.db", args.tickets)
        # Decisions and the floor run in alternating rounds, so that both meet the same disk.
        note(f"deciding {len(scans)} scans, and as many floor transactions, in {ROUNDS} rounds")
        lat: list[float] = []
        floor_lat: list[float] = []
        reasons: dict[str, int] = {}
        decide_s = floor_s = 0.0
        ratios = []
        size = -(-len(scans) // ROUNDS)
        for r in range(ROUNDS):
            chunk = scans[r * size:(r + 1) * size]
            d_s = run_decide(engine, chunk, lat, reasons)
            f_s = floor.run(len(chunk), floor_lat)
            decide_s, floor_s = decide_s + d_s, floor_s + f_s
            ratios.append(f_s / d_s)
            if (r + 1) % 5 == 0:
                note(f"  round {r + 1}/{ROUNDS}")
        note("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
        per_s = len(scans) / decide_s
        floor_per_s = len(scans) / floor_s
        q = statistics.quantiles([x * 1000 for x in lat], n=100)
        print(f"decide_per_s: {per_s:.0f}")
        print(f"decide_p50_ms: {q[49]:.3f}")
        print(f"decide_p99_ms: {q[98]:.3f}")
        print(f"floor_per_s: {floor_per_s:.0f}")
        fq = statistics.quantiles([x * 1000 for x in floor_lat], n=100)
        print(f"floor_p50_ms: {fq[49]:.3f}")
        print(f"floor_p99_ms: {fq[98]:.3f}")
        # the median of the rounds' ratios: fsync times on shared disks swing from round to round
        print(f"ratio_to_floor: {statistics.median(ratios):.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
