"""The appliance's SQLite database: connection set-up and append-only migrations.

Three processes (web, gates, sync) share this one file; it is the only bus between them.
Every connection runs WAL with ``synchronous=FULL`` (an entry acknowledged to a lane survives
a power cut), a busy timeout (writers queue instead of failing) and foreign keys. Connections
are in autocommit mode (``isolation_level=None``): code that writes more than one statement
opens its own ``BEGIN IMMEDIATE`` transaction, so a check-then-write can never be overtaken.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from edge.db_initial import M001, M002, M004, M005, M006

BUSY_TIMEOUT_MS = 5000
migrations = Migrations("wicket-edge")


def connect(path: str | os.PathLike) -> sqlite3.Connection:
    """A connection with the appliance's pragmas; the file and its directory must exist or be creatable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise sqlite3.OperationalError(f"{path}: could not switch to WAL (journal_mode={mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def open_db(path: str | os.PathLike) -> sqlite_utils.Database:
    """A sqlite-utils Database over :func:`connect`, for migrations, admin and bulk work."""
    return sqlite_utils.Database(connect(path))


def migrate(db: sqlite_utils.Database, stop_before: str | None = None) -> list[str]:
    """Apply pending migrations in place; returns the names applied."""
    pending = [m.name for m in migrations.pending(db)]
    if stop_before is not None and stop_before in pending:
        pending = pending[: pending.index(stop_before)]
    migrations.apply(db, stop_before=stop_before)
    return pending


def schema_version(db: sqlite_utils.Database) -> list[str]:
    return [m.name for m in migrations.applied(db)]


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    _run_script(db, M001)


@migrations()
def m002_entry_outbox(db: sqlite_utils.Database) -> None:
    """Entries double as the outbox to the hub: what batch carried them, and the hub's answer."""
    _run_script(db, M002)


CONFIG_TABLES = ("venue", "zones", "gates", "gate_zones", "lanes", "sessions", "hub_keys")


@migrations()
def m003_config_version(db: sqlite_utils.Database) -> None:
    """A counter that every change to the venue's configuration bumps, so the engine can keep
    lanes, sessions and keys in memory and re-read them only when another process changed them."""
    db.execute("INSERT INTO appliance_state (key, value) VALUES ('config_version', '0')")
    for table in CONFIG_TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_config AFTER {event} ON {table} "
                "BEGIN UPDATE appliance_state SET value = CAST(value AS INTEGER) + 1 "
                "WHERE key = 'config_version'; END")


@migrations()
def m004_sync_agent(db: sqlite_utils.Database) -> None:
    """What the sync agent keeps: per stream the count of changes received (compared with the
    hub's checksum) and the last error; the hub's reason for a refused entry."""
    _run_script(db, M004)


@migrations()
def m005_gate_runtime(db: sqlite_utils.Database) -> None:
    """What the gate runtime keeps: the passage result of each admission made at a lane with a
    turnstile (an admission without a passage is annulled: ``admitted`` goes back to 0, so the
    ticket stays unused), and each device's health metrics (the commands the web pages give the
    runtime are in ``device_commands``, m006)."""
    _run_script(db, M005)


@migrations()
def m006_web(db: sqlite_utils.Database) -> None:
    """The local web pages: a language per staff account, server-side staff sessions, commands
    for the gate runtime (device tests, opening a lane), and where an imported entry came from."""
    _run_script(db, M006)


def _run_script(db: sqlite_utils.Database, script: str) -> None:
    """Run statement by statement inside the migration's transaction (``executescript`` would
    commit it halfway)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement[:60]!r}")


@migrations()
def m007_handhelds(db: sqlite_utils.Database) -> None:
    """Handhelds: one-time pairing codes, device tokens, the client scan ids that make a
    handheld's scans idempotent, and each handheld's last heartbeat."""
    _run_script(db, _M007)


_M007 = """
-- A code an admin created for one handheld: shown once on the admin page, only its hash kept.
-- lanes is a JSON list of lane codes the handheld may scan for; [] means every enabled lane.
CREATE TABLE handheld_pairings (
    code_hash   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    lanes       TEXT NOT NULL DEFAULT '[]',
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    device_id   TEXT REFERENCES devices(id) ON DELETE SET NULL
) WITHOUT ROWID;
-- A paired handheld's bearer token, by its hash; the device is a devices row of kind 'handheld'.
CREATE TABLE handheld_tokens (
    token_hash  TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
) WITHOUT ROWID;
CREATE INDEX handheld_tokens_device ON handheld_tokens(device_id);
-- Each scan a handheld sent, by the id the handheld gave it: written in the transaction that
-- records its entry, so a resent scan returns the verdict it got and is never decided twice.
-- fingerprint tells a resend from a different scan reusing the id; verdict is language-free
-- JSON with masked holder data only; scanned_at is the handheld's own clock, as sent.
CREATE TABLE handheld_scans (
    client_scan_id  TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL,
    entry_id        TEXT NOT NULL UNIQUE REFERENCES entries(id) ON DELETE CASCADE,
    fingerprint     TEXT NOT NULL,
    scanned_at      TEXT,
    verdict         TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE handheld_status (
    device_id      TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    seen_at        TEXT NOT NULL,
    battery        INTEGER CHECK (battery BETWEEN 0 AND 100),
    charging       INTEGER CHECK (charging IN (0, 1)),
    app_version    TEXT NOT NULL DEFAULT '',
    queue_depth    INTEGER NOT NULL DEFAULT 0 CHECK (queue_depth >= 0),
    clock_skew_ms  INTEGER
) WITHOUT ROWID;
"""


# -- the queue of entries for the hub ---------------------------------------------------------

# Every entry with seq at or below the mark is acknowledged by the hub: the queue is the entries
# after it that are not. Entries are acknowledged nearly in the order they are made, so the mark
# stays close behind the newest entry and the queue is a short range of the table's own key; an
# index of the unacknowledged entries, which every scan would have to write, is not needed.
# Without the mark (a database edited by hand) the queue is every unacknowledged entry: slower
# to find, never shorter than it is.
ACKED_MARK_KEY = "entries_acked_through"
_MARK_SQL = ("coalesce((SELECT CAST(value AS INTEGER) FROM appliance_state "
             f"WHERE key = '{ACKED_MARK_KEY}'), 0)")
UNACKED = f"acked_at IS NULL AND seq > {_MARK_SQL}"


def acked_mark(conn: sqlite3.Connection) -> int:
    return conn.execute(f"SELECT {_MARK_SQL}").fetchone()[0]


def advance_acked_mark(conn: sqlite3.Connection) -> int:
    """Move the mark past the entries acknowledged since; call it in the transaction that
    acknowledged them. Returns the mark. An entry's seq is never reused (the newest entry is
    never deleted, ``entries_kept``) and nothing takes an acknowledgement back, so what lies at
    or below the mark stays acknowledged."""
    mark = acked_mark(conn)
    first = conn.execute("SELECT seq FROM entries WHERE seq > ? AND acked_at IS NULL "
                         "ORDER BY seq LIMIT 1", (mark,)).fetchone()
    if first is not None:
        mark = first[0] - 1
    else:
        (last,) = conn.execute("SELECT max(seq) FROM entries").fetchone()
        mark = max(mark, last or 0)
    conn.execute("INSERT INTO appliance_state (key, value) VALUES (?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (ACKED_MARK_KEY, str(mark)))
    return mark


@migrations()
def m008_acked_mark(db: sqlite_utils.Database) -> None:
    """The queue for the hub by a mark instead of a partial index (see ``UNACKED``): one page
    fewer written, and flushed, with every scan."""
    db.execute(
        "INSERT INTO appliance_state (key, value) VALUES (?, coalesce("
        "(SELECT min(seq) - 1 FROM entries WHERE acked_at IS NULL), "
        "(SELECT max(seq) FROM entries), 0))", (ACKED_MARK_KEY,))
    db.execute("DROP INDEX entries_unacked")


# Entries are kept: one the hub has not acknowledged is the only record of that scan, and the
# newest one holds the highest seq, which a new entry would otherwise be given again (the queue
# for the hub relies on seqs never coming back, see ``UNACKED``).
_ENTRIES_KEPT = """
CREATE TRIGGER entries_kept BEFORE DELETE ON entries
WHEN old.acked_at IS NULL OR old.seq >= (SELECT max(seq) FROM entries)
BEGIN
    SELECT RAISE(ABORT, 'entries are kept: not one the hub has not acknowledged, nor the newest');
END
"""


@migrations()
def m009_entries_without_autoincrement(db: sqlite_utils.Database) -> None:
    """Entry seqs without ``AUTOINCREMENT``, which wrote the ``sqlite_sequence`` page with
    every scan: a new seq is then one more than the highest in the table, so the newest entry
    and every unacknowledged one may no longer be deleted (``entries_kept``), and the mark is
    lowered to the highest seq there is (a seq above it, given once to a deleted entry, may
    come back).

    The table's rows are stored the same either way, so only its definition changes, by the
    procedure SQLite documents for changes that leave the file's content as it is (section 7
    of "ALTER TABLE"): instant on a table of millions of entries, and needing no free space."""
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'entries'"
                        ).fetchone()
    new = sql.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER PRIMARY KEY", 1)
    if new == sql:
        raise sqlite3.DatabaseError("entries: the seq column is not as m001 made it")
    (version,) = db.execute("PRAGMA schema_version").fetchone()
    db.execute("PRAGMA writable_schema = ON")
    try:
        db.execute("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'entries'",
                   (new,))
        db.execute(f"PRAGMA schema_version = {version + 1}")
    finally:
        db.execute("PRAGMA writable_schema = OFF")
    db.execute("DELETE FROM sqlite_sequence WHERE name = 'entries'")
    db.execute(f"UPDATE appliance_state SET value = CAST(min(CAST(value AS INTEGER), coalesce("
               f"(SELECT max(seq) FROM entries), 0)) AS TEXT) WHERE key = '{ACKED_MARK_KEY}'")
    db.execute(_ENTRIES_KEPT)
    (check,) = db.execute("PRAGMA quick_check").fetchone()
    if check != "ok":
        raise sqlite3.DatabaseError(f"entries: the database is not sound after the change: "
                                    f"{check}")


@migrations()
def m010_manual_entry(db: sqlite_utils.Database) -> None:
    """Ticket numbers typed by staff: a gate admits by number only where its policy says so
    (``gates.manual_entry``, off), and an entry names the staff member who typed the number
    (``entries.staff``). A supervisor's override, recorded until now as a ``manual`` scan, is
    an ``override`` with its supervisor as staff, so it is never counted as admitted by number."""
    _run_script(db, """
ALTER TABLE gates ADD COLUMN manual_entry INTEGER NOT NULL DEFAULT 0
    CHECK (manual_entry IN (0, 1));
ALTER TABLE entries ADD COLUMN staff TEXT;
UPDATE entries SET scan_kind = 'override',
       staff = CASE WHEN device_id LIKE 'web:%' THEN substr(device_id, 5) END
 WHERE scan_kind = 'manual' AND scan_ref LIKE 'override:%';
""")


@migrations()
def m011_handheld_scan_ids(db: sqlite_utils.Database) -> None:
    """A client scan id is the handheld's own: the key of ``handheld_scans`` becomes (device,
    client scan id), so two handhelds that happen to choose the same id each get their own
    verdict, and one cannot replay or block another's scan by its id."""
    _run_script(db, _M011)


_M011 = """
CREATE TABLE handheld_scans_m011 (
    device_id       TEXT NOT NULL,
    client_scan_id  TEXT NOT NULL,
    entry_id        TEXT NOT NULL UNIQUE REFERENCES entries(id) ON DELETE CASCADE,
    fingerprint     TEXT NOT NULL,
    scanned_at      TEXT,
    verdict         TEXT NOT NULL,
    PRIMARY KEY (device_id, client_scan_id)
) WITHOUT ROWID;
INSERT INTO handheld_scans_m011 (device_id, client_scan_id, entry_id, fingerprint, scanned_at,
                                 verdict)
    SELECT device_id, client_scan_id, entry_id, fingerprint, scanned_at, verdict
    FROM handheld_scans;
DROP TABLE handheld_scans;
ALTER TABLE handheld_scans_m011 RENAME TO handheld_scans;
"""


@migrations()
def m012_gate_truth(db: sqlite_utils.Database) -> None:
    """``devices.seen_at``: when the gate runtime last reported the device alive. The runtime
    writes it on a fixed beat whether or not anything changed, so a healthy device whose
    state has held for hours is not shown as not reporting (``state_at`` moves only with the
    state)."""
    db.execute("ALTER TABLE devices ADD COLUMN seen_at TEXT")


@migrations()
def m013_pairing(db: sqlite_utils.Database) -> None:
    """Pairing attempts that count against the rate limit (edge/handhelds.py ``pair``): kept in
    the database, so the limit holds across the web service's worker processes."""
    _run_script(db, _M013)


_M013 = """
-- One row per pairing attempt that failed or is under way, with the client's address; rows
-- older than the limit's window are deleted by the next attempt.
CREATE TABLE handheld_pair_attempts (
    id      INTEGER PRIMARY KEY,
    client  TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX handheld_pair_attempts_at ON handheld_pair_attempts(at);
"""


@migrations()
def m014_detail_codes(db: sqlite_utils.Database) -> None:
    """``entries.detail_code`` and ``detail_params``: why a verdict is what it is, as a stable
    code and its parameters (JSON) beside the English ``detail`` (edge/rules.py ``DETAILS``),
    so that screens word it in their language by the code. Older rows keep NULL and are shown
    with their English words."""
    _run_script(db, _M014)


_M014 = """
ALTER TABLE entries ADD COLUMN detail_code TEXT;
ALTER TABLE entries ADD COLUMN detail_params TEXT;
"""


@migrations()
def m_holder_block_documents(db: sqlite_utils.Database) -> None:
    """``blocklist.doc_hash``: this appliance's keyed hash of the document a ``holder`` block
    names (a risk flag of the hub, which cannot make that hash and sends the document
    instead: sync/changes.py). The row stays keyed by the hub's ``value``, so its delete finds
    it; the engine matches a holder by ``value`` (older records, which carry the hash there)
    or by ``doc_hash``. The number itself is never stored."""
    _run_script(db, _M_HOLDER_BLOCK_DOCUMENTS)


_M_HOLDER_BLOCK_DOCUMENTS = """
ALTER TABLE blocklist ADD COLUMN doc_hash TEXT;
CREATE INDEX blocklist_doc_hash ON blocklist(doc_hash) WHERE doc_hash IS NOT NULL;
"""
