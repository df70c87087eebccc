"""The hub's database: SQLAlchemy Core tables, engines for SQLite and PostgreSQL, migrations.

SQLite is the default (a file, no set-up: demos, small venues, tests); PostgreSQL is the
production database. Both are first-class: every hub test runs on both. Schema changes are
Alembic migrations (``cloud/migrations``); ``init_db`` brings any database to the newest one.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

DEFAULT_URL = "sqlite:///wicket-hub.db"
MIGRATIONS = Path(__file__).parents[1] / "migrations"

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# Single-row counters, each bumped with UPDATE ... RETURNING inside the transaction that uses
# the value: the row lock orders the writers, so values are handed out in commit order.
counters = sa.Table(
    "counters", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.CheckConstraint("value >= 0", name="value_not_negative"),
)

# The change log the allowlist is served from: one row per change per venue, written in the
# same transaction as the sale, refund or edit that caused it. seq comes from the
# 'change_log' counter, so a reader paging by seq never skips a row that commits late.
change_log = sa.Table(
    "change_log", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("venue_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("op", sa.String(10), nullable=False),
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("op IN ('upsert', 'delete')", name="op_known"),
    sa.Index("ix_change_log_venue_seq", "venue_id", "seq"),
)


venues = sa.Table(
    "venues", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("address", sa.String(400), nullable=False, server_default=""),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="Asia/Shanghai"),
)
zones = sa.Table(
    "zones", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.UniqueConstraint("venue_id", "code"),
)
gates = sa.Table(
    "gates", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("reentry", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("realname_mode", sa.String(20), nullable=False, server_default="ticket"),
    sa.Column("open_before_min", sa.Integer, nullable=False, server_default="30"),
    sa.Column("close_after_min", sa.Integer, nullable=False, server_default="60"),
    # admit on a ticket number typed by signed-in staff (never on one a reader read)
    sa.Column("manual_entry", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("venue_id", "code"),
)
gate_zones = sa.Table(
    "gate_zones", metadata,
    sa.Column("gate_id", sa.Integer, sa.ForeignKey("gates.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id", ondelete="CASCADE"),
              primary_key=True),
)
# The venue's seat map. A session's seat configuration starts from it (later migrations).
seats = sa.Table(
    "seats", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("zone_id", sa.Integer, sa.ForeignKey("zones.id"), nullable=False),
    sa.Column("level", sa.String(20), nullable=False),
    sa.Column("row", sa.String(20), nullable=False),
    sa.Column("number", sa.String(20), nullable=False),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("damaged", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("removed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("obstructed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("venue_id", "level", "row", "number"),
)


# Hub signing keys. A new key is 'published' (sent to every venue) before it becomes 'active'
# and signs anything, so no appliance meets a code signed with a key it does not know.
signing_keys = sa.Table(
    "signing_keys", metadata,
    sa.Column("key_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("private_pem", sa.Text, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("retired_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("key_id BETWEEN 1 AND 255", name="key_id_range"),
    sa.CheckConstraint("state IN ('published', 'active', 'retired')", name="state_known"),
)
events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
)
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("gates_open_at", sa.DateTime(timezone=True)),
    sa.Column("on_sale", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("config_confirmed_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
)
# Prices are integer amounts in the currency's minor unit (fen for CNY), never floats.
price_tiers = sa.Table(
    "price_tiers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("code", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.UniqueConstraint("session_id", "code"),
    sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
)
# A session's own seat configuration, copied from the venue map when the session is created.
# Selling claims a row with a conditional UPDATE (status available -> sold).
session_seats = sa.Table(
    "session_seats", metadata,
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id"), primary_key=True),
    sa.Column("seat_id", sa.Integer, sa.ForeignKey("seats.id"), primary_key=True),
    sa.Column("category", sa.String(12), nullable=False),
    sa.Column("status", sa.String(10), nullable=False, server_default="available"),
    sa.Column("reserved_for", sa.String(200)),
    sa.Column("reserved_until", sa.DateTime(timezone=True)),
    sa.CheckConstraint("category IN ('sellable', 'registered', 'occupied', 'emergency')",
                       name="category_known"),
    sa.CheckConstraint("status IN ('available', 'sold')", name="status_known"),
)
holders = sa.Table(
    "holders", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("doc_type", sa.String(40), nullable=False),
    sa.Column("doc_number", sa.String(40), nullable=False, index=True),
)
tickets = sa.Table(
    "tickets", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("number", sa.String(40), nullable=False, unique=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("role", sa.String(12), nullable=False),
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id")),
    sa.Column("scope", sa.JSON, nullable=False),
    sa.Column("venues", sa.JSON, nullable=False),
    sa.Column("zone_id", sa.Integer),
    sa.Column("seat_id", sa.Integer, sa.ForeignKey("seats.id")),
    sa.Column("valid_from", sa.DateTime(timezone=True)),
    sa.Column("valid_until", sa.DateTime(timezone=True)),
    sa.Column("daily_limit", sa.Integer, nullable=False, server_default="0"),
    sa.Column("serial", sa.Integer, nullable=False, server_default="0"),
    sa.Column("key_id", sa.Integer, nullable=False),
    sa.Column("code", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False, server_default="issued"),
    sa.Column("rfid_uid", sa.String(20), unique=True),
    sa.Column("holder_id", sa.Integer, sa.ForeignKey("holders.id")),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("price_tier_id", sa.Integer),
    sa.Column("amount", sa.BigInteger, nullable=False, server_default="0"),  # fen (cents)
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.CheckConstraint("state IN ('issued', 'void', 'refunded')", name="state_known"),
    sa.CheckConstraint("kind IN ('session', 'sessions', 'venues')", name="kind_known"),
    sa.Index("ix_tickets_session_state", "session_id", "state"),
    sa.Index("ix_tickets_one_live_per_seat", "session_id", "seat_id", unique=True,
             sqlite_where=sa.text("state = 'issued' AND seat_id IS NOT NULL"),
             postgresql_where=sa.text("state = 'issued' AND seat_id IS NOT NULL")),
)


# An appliance is registered for a venue (state 'pending', with a one-time enrollment token),
# enrolls once (state 'active', with a credential) and may be revoked. Only hashes of the
# token and the credential are stored.
appliances = sa.Table(
    "appliances", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("token_hash", sa.String(64), unique=True),
    sa.Column("token_expires_at", sa.DateTime(timezone=True)),
    sa.Column("credential_hash", sa.String(64), unique=True),
    sa.Column("enrolled_at", sa.DateTime(timezone=True)),
    sa.Column("last_seen_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reported", sa.JSON),  # the last heartbeat: health, cursors, queue, version
    sa.Column("clock_skew_ms", sa.BigInteger),
    sa.CheckConstraint("state IN ('pending', 'active', 'revoked')", name="state_known"),
)
# Commands for an appliance, handed over in its next heartbeat answer.
appliance_commands = sa.Table(
    "appliance_commands", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("appliance_id", sa.Integer, sa.ForeignKey("appliances.id"), nullable=False),
    sa.Column("command", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("command IN ('resync', 'roll_credential', 'wipe')", name="command_known"),
)
# Entries reported by appliances, stored once forever by their UUID.
entries = sa.Table(
    "entries", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("appliance_id", sa.Integer, sa.ForeignKey("appliances.id"), nullable=False),
    sa.Column("venue_id", sa.Integer, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lane", sa.String(40)),
    sa.Column("direction", sa.String(3), nullable=False),
    sa.Column("ticket_id", sa.BigInteger, index=True),
    sa.Column("session_id", sa.Integer),
    sa.Column("admitted", sa.Boolean, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("cursor", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    # the scan kind (qr, rfid, id_card, manual, override) and, for a ticket number typed by
    # staff or an override, the staff member; both null from appliances that did not say
    sa.Column("kind", sa.String(20)),
    sa.Column("staff", sa.String(64)),
)


# What the hub finds among reported entries: a single-entry ticket admitted by two appliances
# apart from each other, an admission made with a cursor that already carried the ticket's
# revocation (must never happen), or one made before the revocation reached the venue.
conflicts = sa.Table(
    "conflicts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("ticket_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("entry_ids", sa.JSON, nullable=False),
    sa.Column("detail", sa.String(400), nullable=False),
    sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reviewed_at", sa.DateTime(timezone=True)),
    sa.Column("reviewed_by", sa.String(80)),
    sa.Column("note", sa.Text),
    sa.CheckConstraint("kind IN ('double_admission', 'admitted_after_revocation', "
                       "'admitted_before_revocation_known')", name="kind_known"),
)


# Central ops (cloud/ops.py, cloud/alerts.py). Lanes as the hub knows them, so that the lane
# code an entry carries leads to its gate and the gate's zones.
lanes = sa.Table(
    "lanes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=False),
    sa.Column("gate_id", sa.Integer, sa.ForeignKey("gates.id"), nullable=False),
    sa.Column("code", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("direction", sa.String(3), nullable=False, server_default="in"),
    sa.UniqueConstraint("venue_id", "code"),
    sa.CheckConstraint("direction IN ('in', 'out')", name="direction_known"),
)
# Lanes as each appliance last reported them in its heartbeat (cloud/appliances.py): an entry's
# lane leads to its gate through these where the hub's own ``lanes`` define none.
appliance_lanes = sa.Table(
    "appliance_lanes", metadata,
    sa.Column("appliance_id", sa.Integer, sa.ForeignKey("appliances.id"), primary_key=True,
              autoincrement=False),
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("gate_code", sa.String(64)),
    sa.Column("name", sa.String(128), nullable=False, server_default=""),
    sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
)
# Entries counted per session, venue, lane, zone and minute, in the transaction that stores
# them (cloud/ops.py count_entries): the dashboard reads thousands of these rows, not millions
# of entries. session_id 0 = no session; lane '' = none; zone_id 0 = not known.
entry_minutes = sa.Table(
    "entry_minutes", metadata,
    sa.Column("session_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("venue_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("lane", sa.String(40), primary_key=True),
    sa.Column("zone_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("admitted_in", sa.Integer, nullable=False, server_default="0"),
    sa.Column("admitted_out", sa.Integer, nullable=False, server_default="0"),
    sa.Column("refused", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_in", sa.Integer, nullable=False, server_default="0"),
    sa.Column("manual_in", sa.Integer, nullable=False, server_default="0"),  # by ticket number
    sa.Index("ix_entry_minutes_minute", "minute", "venue_id"),
)
# One row per ticket per session it has been admitted to: its primary key decides, under any
# concurrency, which admission is the ticket's first (counted as 'entered' once).
entered_tickets = sa.Table(
    "entered_tickets", metadata,
    sa.Column("session_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.String(36), nullable=False),
)
# Live (issued) tickets per session, kept by triggers on tickets (migration 0012) in the
# transaction of every sale, refund and void: the dashboard reads one row per session.
session_sold = sa.Table(
    "session_sold", metadata,
    sa.Column("session_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sold", sa.BigInteger, nullable=False, server_default="0"),
)
# Alert thresholds set by ops; a kind without a row uses the default in cloud/alerts.py.
alert_rules = sa.Table(
    "alert_rules", metadata,
    sa.Column("kind", sa.String(30), primary_key=True),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("window_min", sa.Integer, nullable=False, server_default="5"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(80), nullable=False),
    sa.CheckConstraint("threshold >= 0", name="threshold_not_negative"),
    sa.CheckConstraint("window_min BETWEEN 1 AND 240", name="window_range"),
)
# Alerts raised and cleared by cloud/alerts.py evaluate(); at most one open per rule and subject.
alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("subject", sa.String(80), nullable=False),
    sa.Column("venue_id", sa.Integer),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("detail", sa.String(400), nullable=False),
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cleared_at", sa.DateTime(timezone=True)),
    sa.Index("ix_alerts_one_open", "kind", "subject", unique=True,
             sqlite_where=sa.text("cleared_at IS NULL"),
             postgresql_where=sa.text("cleared_at IS NULL")),
    sa.Index("ix_alerts_raised_at", "raised_at"),
)
# Long-lived links for a wall display, made by an ops user; only the token's SHA-256 is kept.
display_links = sa.Table(
    "display_links", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)


staff = sa.Table(
    "staff", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(10), nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'sales', 'ops')", name="role_known"),
)
# API tokens act with their staff member's role; only their SHA-256 is kept.
api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff.id"), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)
# A signed-in staff member's page session: the browser holds a random token, the hub its
# SHA-256. It ends on logout, after an idle spell or at its absolute lifetime.
staff_sessions = sa.Table(
    "staff_sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff.id"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
)
# Who did what to venues, seats, sessions, tickets, appliances and staff, with before/after.
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("action", sa.String(80), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("before", sa.JSON),
    sa.Column("after", sa.JSON),
)


def make_engine(url: str = DEFAULT_URL) -> sa.Engine:
    """An engine for a database URL; SQLite files get WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 10})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(conn):
            # take the write lock up front: a transaction that reads and then writes must not
            # fail halfway because another writer came first
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        # let SQLAlchemy, not the driver, open transactions (so BEGIN IMMEDIATE above is used)
        @sa.event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_conn, _record):
            dbapi_conn.isolation_level = None

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def init_db(url: str = DEFAULT_URL) -> list[str]:
    """Create or upgrade the database to the newest migration; returns the revisions applied."""
    engine = make_engine(url)
    before = current_revision(engine)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    script = ScriptDirectory.from_config(cfg)
    applied = [r.revision for r in script.iterate_revisions("heads", before or "base")
               if r.revision != before]
    engine.dispose()
    return list(reversed(applied))


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
