"""The SQL of the appliance database's first six migrations (:mod:`edge.db`), as they shipped.

Migrations are append-only: this text never changes once released; later changes are new
migrations in :mod:`edge.db`.
"""

M001 = """
CREATE TABLE venue (
    id            INTEGER PRIMARY KEY,
    code          TEXT NOT NULL DEFAULT '',
    name          TEXT NOT NULL,
    timezone      TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    version       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE zones (
    id            INTEGER PRIMARY KEY,
    code          TEXT NOT NULL,
    name          TEXT NOT NULL,
    version       INTEGER NOT NULL DEFAULT 0
);
-- Entry policy lives on the gate: which zones it admits, re-entry, real-name mode, margins.
CREATE TABLE gates (
    id              INTEGER PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    reentry         INTEGER NOT NULL DEFAULT 0 CHECK (reentry IN (0, 1)),
    realname_mode   TEXT NOT NULL DEFAULT 'ticket'
                    CHECK (realname_mode IN ('ticket', 'ticket_and_id', 'id_only')),
    open_before_min INTEGER NOT NULL DEFAULT 30 CHECK (open_before_min >= 0),
    close_after_min INTEGER NOT NULL DEFAULT 60 CHECK (close_after_min >= 0),
    version         INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE gate_zones (
    gate_id  INTEGER NOT NULL REFERENCES gates(id) ON DELETE CASCADE,
    zone_id  INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
    PRIMARY KEY (gate_id, zone_id)
) WITHOUT ROWID;
CREATE TABLE lanes (
    id                INTEGER PRIMARY KEY,
    code              TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL DEFAULT '',
    gate_id           INTEGER NOT NULL REFERENCES gates(id),
    direction         TEXT NOT NULL DEFAULT 'in' CHECK (direction IN ('in', 'out')),
    passage_timeout_s INTEGER NOT NULL DEFAULT 10 CHECK (passage_timeout_s > 0),
    enabled           INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1))
);
CREATE TABLE devices (
    id            TEXT PRIMARY KEY,
    lane_id       INTEGER REFERENCES lanes(id) ON DELETE SET NULL,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL DEFAULT '',
    config        TEXT NOT NULL DEFAULT '{}',
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    state         TEXT NOT NULL DEFAULT 'unknown',
    state_detail  TEXT,
    state_at      TEXT
);
CREATE TABLE sessions (
    id             INTEGER PRIMARY KEY,
    venue_id       INTEGER NOT NULL,
    name           TEXT NOT NULL,
    starts_at      TEXT NOT NULL,
    ends_at        TEXT NOT NULL,
    gates_open_at  TEXT,
    version        INTEGER NOT NULL DEFAULT 0,
    CHECK (ends_at > starts_at)
);
CREATE TABLE hub_keys (
    key_id      INTEGER PRIMARY KEY CHECK (key_id BETWEEN 1 AND 255),
    public_key  TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    retired_at  TEXT
);
-- Names and document numbers are sealed with the appliance's holder key (AES-GCM);
-- doc_hash is a keyed hash for the ID-card-alone lookup; the masked values are for screens.
CREATE TABLE holders (
    id           INTEGER PRIMARY KEY,
    doc_type     TEXT NOT NULL,
    doc_hash     TEXT NOT NULL,
    name_sealed  BLOB NOT NULL,
    doc_sealed   BLOB NOT NULL,
    name_masked  TEXT NOT NULL,
    doc_masked   TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX holders_doc_hash ON holders(doc_hash);
-- The allowlist. id is the hub's ticket id, the one a ticket code carries.
CREATE TABLE tickets (
    id           INTEGER PRIMARY KEY,
    number       TEXT NOT NULL UNIQUE,
    serial       INTEGER NOT NULL DEFAULT 0,
    kind         TEXT NOT NULL CHECK (kind IN ('session', 'sessions', 'venues')),
    role         TEXT NOT NULL DEFAULT 'ticket' CHECK (role IN ('ticket', 'staff', 'registered')),
    scope        TEXT NOT NULL,  -- comma-separated session or venue ids
    zone_id      INTEGER NOT NULL DEFAULT 0,
    seat_id      INTEGER,
    seat         TEXT,
    valid_from   TEXT,
    valid_until  TEXT,
    daily_limit  INTEGER NOT NULL DEFAULT 0,
    realname     INTEGER NOT NULL DEFAULT 0 CHECK (realname IN (0, 1)),
    state        TEXT NOT NULL DEFAULT 'issued' CHECK (state IN ('issued', 'void', 'refunded')),
    rfid_uid     TEXT UNIQUE,
    code_digest  TEXT UNIQUE,
    holder_id    INTEGER,
    version      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tickets_holder ON tickets(holder_id) WHERE holder_id IS NOT NULL;
-- A revocation outlives the ticket row: a code sold and refunded while this appliance was
-- offline is refused even though its upsert never arrived. serial_below NULL = every code.
CREATE TABLE revocations (
    ticket_id     INTEGER PRIMARY KEY,
    serial_below  INTEGER,
    reason        TEXT NOT NULL,
    revoked_at    TEXT,
    version       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE blocklist (
    kind     TEXT NOT NULL CHECK (kind IN ('ticket', 'rfid', 'holder')),
    value    TEXT NOT NULL,
    reason   TEXT NOT NULL DEFAULT '',
    version  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
-- Every scan, admitted or refused. scan_ref is the code text, RFID UID or typed text; for an
-- ID-card scan it is the keyed document hash, never the number itself.
CREATE TABLE entries (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    at               TEXT NOT NULL,
    day              TEXT NOT NULL,
    lane_id          INTEGER,
    gate_id          INTEGER,
    device_id        TEXT,
    direction        TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    scan_kind        TEXT NOT NULL,
    scan_ref         TEXT NOT NULL,
    ticket_id        INTEGER,
    session_id       INTEGER,
    admitted         INTEGER NOT NULL CHECK (admitted IN (0, 1)),
    reason           TEXT NOT NULL,
    detail           TEXT NOT NULL DEFAULT '',
    offline_code     INTEGER NOT NULL DEFAULT 0 CHECK (offline_code IN (0, 1)),
    cursor           INTEGER NOT NULL DEFAULT 0,
    clock_offset_ms  INTEGER
);
CREATE INDEX entries_ticket ON entries(ticket_id, seq) WHERE admitted = 1;
CREATE TABLE sync_state (
    stream      TEXT PRIMARY KEY,
    cursor      INTEGER NOT NULL DEFAULT 0,
    last_ok_at  TEXT,
    detail      TEXT NOT NULL DEFAULT ''
);
INSERT INTO sync_state (stream) VALUES ('allowlist'), ('revocations');
CREATE TABLE appliance_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
CREATE TABLE staff_users (
    id                   INTEGER PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE,
    password_hash        TEXT NOT NULL,
    role                 TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'gate')),
    created_at           TEXT NOT NULL,
    password_changed_at  TEXT,
    failed_logins        INTEGER NOT NULL DEFAULT 0,
    locked_until         TEXT,
    disabled             INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL DEFAULT '',
    detail   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log(at);
"""

M002 = """
ALTER TABLE entries ADD COLUMN batch_id TEXT;
ALTER TABLE entries ADD COLUMN acked_at TEXT;
ALTER TABLE entries ADD COLUMN ack_status TEXT
    CHECK (ack_status IN ('stored', 'duplicate', 'conflict', 'refused'));
CREATE INDEX entries_unacked ON entries(seq) WHERE acked_at IS NULL;
"""

M004 = """
ALTER TABLE sync_state ADD COLUMN changes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN last_error TEXT;
ALTER TABLE sync_state ADD COLUMN last_error_at TEXT;
INSERT INTO sync_state (stream) VALUES ('entries'), ('heartbeat');
ALTER TABLE entries ADD COLUMN ack_reason TEXT;
CREATE INDEX entries_refused ON entries(ack_reason) WHERE ack_status = 'refused';
"""

# passage: NULL where no turnstile was involved (refusals, handhelds); 'pending' while the lane
# is open; then 'passed', 'timeout' (nobody came: annulled), 'failed' (the lane could not be
# opened: annulled), 'no_sensor' (a turnstile without a passage input: the opening counts) or
# 'unconfirmed' (the runtime stopped while the lane was open: the admission stands, the safe
# side against a ticket being used twice). An entry still 'pending' is not final: it must not
# leave the appliance before it is settled.
M005 = """
ALTER TABLE entries ADD COLUMN passage TEXT
    CHECK (passage IN ('pending', 'passed', 'timeout', 'failed', 'no_sensor', 'unconfirmed'));
ALTER TABLE entries ADD COLUMN passage_at TEXT;
CREATE INDEX entries_passage_pending ON entries(seq) WHERE passage = 'pending';
ALTER TABLE devices ADD COLUMN health TEXT NOT NULL DEFAULT '{}';
"""

M006 = """
ALTER TABLE staff_users ADD COLUMN lang TEXT CHECK (lang IN ('en', 'zh'));
-- A staff session: the browser holds a random token, the database its SHA-256, so that a
-- logout, a password change or a disabled account ends it everywhere at once.
CREATE TABLE web_sessions (
    token_hash  TEXT PRIMARY KEY,
    staff_id    INTEGER NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    seen_at     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_staff ON web_sessions(staff_id);
-- Work for the gate runtime, written by the web pages: 'test' a device, 'open_lane' after a
-- supervisor's override. The runtime takes a pending row (status -> running, taken_at), does
-- it and writes status done or failed with a JSON result; a row nobody took before expires_at
-- is never carried out (the web pages show it as expired).
CREATE TABLE device_commands (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    command     TEXT NOT NULL CHECK (command IN ('test', 'open_lane')),
    device_id   TEXT REFERENCES devices(id) ON DELETE CASCADE,
    lane_id     INTEGER,
    args        TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed')),
    taken_at    TEXT,
    done_at     TEXT,
    result      TEXT,
    CHECK (device_id IS NOT NULL OR lane_id IS NOT NULL)
);
CREATE INDEX device_commands_pending ON device_commands(id) WHERE status = 'pending';
-- Entries imported from another appliance's emergency export carry its fingerprint.
ALTER TABLE entries ADD COLUMN imported_from TEXT;
"""
