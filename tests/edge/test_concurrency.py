"""Many OS processes, one ticket, the same instant: exactly one is admitted."""

from __future__ import annotations

import multiprocessing

from edge import db as db_mod
from edge.engine import Engine, Scan, ScanKind
from edge.holders import HolderVault
from tests.conftest import NOW

PROCESSES = 8
ROUNDS = 5


def _scan_at_once(db_path, key, code, lane, barrier, results):
    engine = Engine(db_mod.connect(db_path), HolderVault(key))
    barrier.wait()
    d = engine.decide(Scan(ScanKind.QR, code, device_id=f"lane-{lane}"), lane, NOW)
    results.put((str(d.reason), d.entry_id))


def test_eight_processes_on_two_lanes_admit_a_ticket_exactly_once(loaded, db_path, venue,
                                                                  holder_key):
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(ROUNDS):
        code = venue.tickets[1002 + 4 * round_].code  # zone B: admitted at lanes N1 and N2
        barrier = ctx.Barrier(PROCESSES)
        results = ctx.Queue()
        procs = [ctx.Process(target=_scan_at_once,
                             args=(str(db_path), holder_key, code, ("N1", "N2")[i % 2], barrier,
                                   results))
                 for i in range(PROCESSES)]
        for p in procs:
            p.start()
        got = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        reasons = sorted(r for r, _ in got)
        assert reasons == ["ALREADY_ENTERED"] * (PROCESSES - 1) + ["OK"], (round_, reasons)
        ids = {e for _, e in got}
        rows = loaded.execute(
            f"SELECT id, reason FROM entries WHERE id IN ({','.join('?' * len(ids))})",
            list(ids)).fetchall()
        assert len(rows) == PROCESSES
