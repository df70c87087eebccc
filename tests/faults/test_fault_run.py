"""The fault run, short: a fixed seed, a real hub process, the proxy, the agent killed and
restarted. Zero invariant failures, and proof that faults of every kind and kills happened. Then
the checks themselves, shown to catch violations planted on purpose."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.fleet.tables import entries as hub_entries
from edge.db import immediate
from sync.ids import uuid7
from sync.timeutil import to_iso, utcnow
from tests.faults.harness import check
from tests.faults.proxy import FAULT_KINDS
from tests.faults.run import World, run

SCHEDULES = 22
SEED = 20261201


@pytest.mark.slow
def test_a_short_seeded_run_keeps_every_invariant_and_really_injects(tmp_path):
    lines: list[str] = []
    totals = run(SCHEDULES, SEED, tmp_path, progress_every=0,
                 out=lambda *a, **k: lines.append(" ".join(map(str, a))))
    report = "\n".join(lines + totals.lines())
    assert totals.schedules == SCHEDULES, report
    assert totals.failures == [], report
    # the harness really did its job: every kind of fault, kills, entries, resends
    assert {k for k, n in totals.faults.items() if n} == set(FAULT_KINDS), report
    assert sum(n for k, n in totals.kills.items() if k != "sigterm") >= 1, report
    assert totals.entries >= 5 * SCHEDULES, report
    assert totals.scans["OK"] > 0 and totals.scans["REVOKED"] > 0, report
    assert totals.duplicates_answered + totals.acked_duplicates > 0, report
    assert totals.actions["refunded"] + totals.actions["moved"] > 0, report


# -- the checks catch what they are meant to catch ------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("planted"), seed=1)
    live = w.hub.live()
    w.hub.refund(live[0])
    w.revoked = live[0]
    _scan(w, [w.hub.tickets[t].code for t in live[1:6]])
    r = w.edge.sync_once()
    assert r.returncode == 0, r.output
    yield w
    w.close()


def _scan(w, codes):
    from edge.engine import Engine, Scan, ScanKind
    from edge.holders import HolderVault

    conn = w.edge.connect()
    try:
        engine = Engine(conn, HolderVault(w.edge.holder_key))
        return [engine.decide(Scan(ScanKind.QR, c), "L1") for c in codes]
    finally:
        conn.close()


def _checked(w):
    conn = w.edge.connect()
    try:
        changes = conn.execute("SELECT changes FROM sync_state WHERE stream = 'allowlist'"
                               ).fetchone()[0]
    finally:
        conn.close()
    return check(w.hub, w.edge, w.credential, changes)


def test_a_clean_world_passes(world):
    rep = _checked(world)
    assert rep.failures == []
    assert rep.edge_entries == rep.hub_entries == 5


def _edge_sql(w, sql, args=()):
    conn = w.edge.connect()
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _one_entry(w):
    with w.hub.engine.connect() as c:
        return c.execute(sa.select(hub_entries).limit(1)).one()._asdict()


def plant_lost(w):
    row = _one_entry(w)
    with w.hub.engine.begin() as c:
        c.execute(sa.delete(hub_entries).where(hub_entries.c.id == row["id"]))

    def undo():
        with w.hub.engine.begin() as c:
            c.execute(sa.insert(hub_entries).values(**row))
    return undo


def plant_stored_twice(w):
    row = _one_entry(w)
    copy = {**row, "id": str(uuid7())}
    with w.hub.engine.begin() as c:
        c.execute(sa.insert(hub_entries).values(**copy))

    def undo():
        with w.hub.engine.begin() as c:
            c.execute(sa.delete(hub_entries).where(hub_entries.c.id == copy["id"]))
    return undo


def plant_unacknowledged(w):
    (entry_id,) = _edge_sql(w, "SELECT id FROM entries LIMIT 1")[0]
    (acked,) = _edge_sql(w, "SELECT acked_at FROM entries WHERE id = ?", (entry_id,))[0]
    _edge_sql(w, "UPDATE entries SET acked_at = NULL WHERE id = ?", (entry_id,))
    return lambda: _edge_sql(w, "UPDATE entries SET acked_at = ? WHERE id = ?",
                             (acked, entry_id))


def plant_revocation_forgotten(w):
    row = _edge_sql(w, "SELECT * FROM revocations WHERE ticket_id = ?",
                    (w.revoked,))[0]
    _edge_sql(w, "DELETE FROM revocations WHERE ticket_id = ?", (row[0],))
    marks = ",".join("?" * len(row))
    return lambda: _edge_sql(w, f"INSERT INTO revocations VALUES ({marks})", row)


def plant_ticket_altered(w):
    (ticket_id, digest) = _edge_sql(w, "SELECT id, code_digest FROM tickets ORDER BY id DESC "
                                    "LIMIT 1")[0]
    _edge_sql(w, "UPDATE tickets SET code_digest = ? WHERE id = ?", ("0" * 32, ticket_id))
    return lambda: _edge_sql(w, "UPDATE tickets SET code_digest = ? WHERE id = ?",
                             (digest, ticket_id))


def plant_cursor_behind(w):
    (cursor,) = _edge_sql(w, "SELECT cursor FROM sync_state WHERE stream = 'allowlist'"
                          )[0]
    _edge_sql(w, "UPDATE sync_state SET cursor = ? WHERE stream = 'allowlist'", (cursor - 1,))
    return lambda: _edge_sql(w, "UPDATE sync_state SET cursor = ? WHERE stream = 'allowlist'",
                             (cursor,))


def plant_admitted_after_revocation(w):
    entry_id = str(uuid7())
    _edge_sql(w, "INSERT INTO entries (id, at, day, direction, scan_kind, scan_ref, ticket_id, "
                 "admitted, reason, acked_at) VALUES (?, ?, '2026-12-01', 'in', 'qr', 'x', ?, "
                 "1, 'OK', ?)", (entry_id, to_iso(utcnow()), w.revoked, to_iso(utcnow())))

    def undo():  # behind the appliance's back: it never lets its newest entry go
        conn = w.edge.connect()
        try:
            with immediate(conn):
                (trigger,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                                          "AND name = 'entries_kept'").fetchone()
                conn.execute("DROP TRIGGER entries_kept")
                conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
                conn.execute(trigger)
        finally:
            conn.close()
    return undo


PLANTED = {
    "lost": plant_lost,
    "stored twice": plant_stored_twice,
    "unacknowledged": plant_unacknowledged,
    "revocations": plant_revocation_forgotten,
    "tickets": plant_ticket_altered,
    "cursor": plant_cursor_behind,
    "admitted after revocation": plant_admitted_after_revocation,
}


@pytest.mark.parametrize("kind", PLANTED)
def test_the_checks_catch_a_planted_violation(world, kind):
    undo = PLANTED[kind](world)
    try:
        rep = _checked(world)
    finally:
        undo()
    assert any(f.startswith(kind) for f in rep.failures), rep.failures
    assert _checked(world).failures == []


def test_a_revoked_ticket_scanned_after_its_revocation_arrived_is_refused(world):
    d = _scan(world, [world.hub.tickets[world.revoked].code])[0]
    assert str(d.reason) == "REVOKED" and not d.open_lane
    r = world.edge.sync_once()
    assert r.returncode == 0, r.output
    assert _checked(world).failures == []
