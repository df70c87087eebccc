"""Central ops: lanes on the hub, entry counts per minute kept with every push, the tickets
each session has admitted, alert rules and alerts, wall-display links.

Entries stored before this revision are counted here once, so the dashboard starts complete.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-01
"""

from collections import defaultdict
from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lanes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("venue_id", sa.Integer,
                  sa.ForeignKey("venues.id", name="fk_lanes_venue_id_venues"), nullable=False),
        sa.Column("gate_id", sa.Integer,
                  sa.ForeignKey("gates.id", name="fk_lanes_gate_id_gates"), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("direction", sa.String(3), nullable=False, server_default="in"),
        sa.UniqueConstraint("venue_id", "code", name="uq_lanes_venue_id"),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_lanes_direction_known"),
    )
    op.create_table(
        "entry_minutes",
        sa.Column("session_id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("venue_id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("lane", sa.String(40), nullable=False),
        sa.Column("zone_id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("admitted_in", sa.Integer, nullable=False, server_default="0"),
        sa.Column("admitted_out", sa.Integer, nullable=False, server_default="0"),
        sa.Column("refused", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_in", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("session_id", "venue_id", "lane", "zone_id", "minute",
                                name="pk_entry_minutes"),
    )
    op.create_index("ix_entry_minutes_minute", "entry_minutes", ["minute", "venue_id"])
    op.create_table(
        "entered_tickets",
        sa.Column("session_id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("ticket_id", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("entry_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "ticket_id", name="pk_entered_tickets"),
    )
    op.create_table(
        "alert_rules",
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("window_min", sa.Integer, nullable=False, server_default="5"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("kind", name="pk_alert_rules"),
        sa.CheckConstraint("threshold >= 0", name="ck_alert_rules_threshold_not_negative"),
        sa.CheckConstraint("window_min BETWEEN 1 AND 240", name="ck_alert_rules_window_range"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("venue_id", sa.Integer),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("detail", sa.String(400), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_alerts_one_open", "alerts", ["kind", "subject"], unique=True,
                    sqlite_where=sa.text("cleared_at IS NULL"),
                    postgresql_where=sa.text("cleared_at IS NULL"))
    op.create_index("ix_alerts_raised_at", "alerts", ["raised_at"])
    op.create_table(
        "display_links",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("token_hash", name="uq_display_links_token_hash"),
    )
    op.create_index("ix_tickets_session_state", "tickets", ["session_id", "state"])
    op.create_table(
        "session_sold",
        sa.Column("session_id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("sold", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("session_id", name="pk_session_sold"),
    )
    op.execute("INSERT INTO session_sold (session_id, sold) SELECT session_id, count(*) "
               "FROM tickets WHERE session_id IS NOT NULL AND state = 'issued' "
               "GROUP BY session_id")
    for statement in (PG_TRIGGERS if op.get_bind().dialect.name == "postgresql"
                      else SQLITE_TRIGGERS):
        op.execute(statement)
    # evaluations of the alert rules queue on this row and skip when one ran moments ago
    op.bulk_insert(sa.table("counters", sa.column("name", sa.String),
                            sa.column("value", sa.BigInteger)),
                   [{"name": "alerts_evaluated", "value": 0}])
    _count_existing_entries()


# Tickets sold per session, counted by the database in the transaction of the sale or refund:
# per statement on PostgreSQL (a batch of 100,000 tickets is one upsert per session), per row
# on SQLite.
PG_TRIGGERS = (
    """CREATE FUNCTION ops_count_sold() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        INSERT INTO session_sold (session_id, sold)
          SELECT session_id, count(*) FROM new_rows
          WHERE session_id IS NOT NULL AND state = 'issued'
          GROUP BY session_id ORDER BY session_id
        ON CONFLICT (session_id) DO UPDATE SET sold = session_sold.sold + excluded.sold;
      ELSE
        INSERT INTO session_sold (session_id, sold)
          SELECT session_id, sum(d) FROM (
            SELECT session_id, -1 AS d FROM old_rows
            WHERE session_id IS NOT NULL AND state = 'issued'
            UNION ALL
            SELECT session_id, 1 FROM new_rows
            WHERE session_id IS NOT NULL AND state = 'issued') AS moved
          GROUP BY session_id HAVING sum(d) <> 0 ORDER BY session_id
        ON CONFLICT (session_id) DO UPDATE SET sold = session_sold.sold + excluded.sold;
      END IF;
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER tickets_count_sold_insert AFTER INSERT ON tickets "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ops_count_sold()",
    "CREATE TRIGGER tickets_count_sold_update AFTER UPDATE ON tickets "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION ops_count_sold()",
)
SQLITE_TRIGGERS = (
    """CREATE TRIGGER tickets_count_sold_insert AFTER INSERT ON tickets
    WHEN NEW.session_id IS NOT NULL AND NEW.state = 'issued'
    BEGIN
      INSERT INTO session_sold (session_id, sold) VALUES (NEW.session_id, 1)
      ON CONFLICT (session_id) DO UPDATE SET sold = sold + 1;
    END""",
    """CREATE TRIGGER tickets_count_sold_update AFTER UPDATE OF state, session_id ON tickets
    BEGIN
      UPDATE session_sold SET sold = sold - 1
      WHERE OLD.session_id IS NOT NULL AND OLD.state = 'issued'
        AND session_id = OLD.session_id;
      INSERT INTO session_sold (session_id, sold)
      SELECT NEW.session_id, 1 WHERE NEW.session_id IS NOT NULL AND NEW.state = 'issued'
      ON CONFLICT (session_id) DO UPDATE SET sold = sold + 1;
    END""",
)


def _count_existing_entries() -> None:
    """Count the entries already stored, as cloud/ops.py count_entries would have."""
    conn = op.get_bind()
    zone_of = dict(conn.execute(sa.text("SELECT id, zone_id FROM tickets")).all())
    minutes: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    entered: dict[tuple[int, int], str] = {}
    rows = conn.execute(sa.text(
        "SELECT id, venue_id, session_id, lane, at, direction, admitted, ticket_id "
        "FROM entries ORDER BY at, id").columns(at=sa.DateTime(timezone=True)))
    for r in rows:
        at = r.at.replace(tzinfo=UTC) if r.at.tzinfo is None else r.at.astimezone(UTC)
        key = (r.session_id or 0, r.venue_id, r.lane or "",
               zone_of.get(r.ticket_id) or 0, at.replace(second=0, microsecond=0))
        counts = minutes[key]
        if not r.admitted:
            counts[2] += 1
        elif r.direction == "out":
            counts[1] += 1
        else:
            counts[0] += 1
            pair = (r.session_id or 0, r.ticket_id)
            if r.ticket_id is not None and r.session_id and pair not in entered:
                entered[pair] = r.id
                counts[3] += 1
    if minutes:
        op.bulk_insert(sa.table(
            "entry_minutes", *(sa.column(c) for c in (
                "session_id", "venue_id", "lane", "zone_id", "admitted_in", "admitted_out",
                "refused", "first_in")), sa.column("minute", sa.DateTime(timezone=True))),
            [{"session_id": k[0], "venue_id": k[1], "lane": k[2], "zone_id": k[3],
              "minute": k[4], "admitted_in": c[0], "admitted_out": c[1], "refused": c[2],
              "first_in": c[3]} for k, c in minutes.items()])
    if entered:
        op.bulk_insert(sa.table("entered_tickets", sa.column("session_id"),
                                sa.column("ticket_id"), sa.column("entry_id")),
                       [{"session_id": s, "ticket_id": t, "entry_id": e}
                        for (s, t), e in entered.items()])


def downgrade() -> None:
    op.execute("DELETE FROM counters WHERE name = 'alerts_evaluated'")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER tickets_count_sold_update ON tickets")
        op.execute("DROP TRIGGER tickets_count_sold_insert ON tickets")
        op.execute("DROP FUNCTION ops_count_sold()")
    else:
        op.execute("DROP TRIGGER tickets_count_sold_update")
        op.execute("DROP TRIGGER tickets_count_sold_insert")
    op.drop_table("session_sold")
    op.drop_index("ix_tickets_session_state", "tickets")
    op.drop_table("display_links")
    op.drop_index("ix_alerts_raised_at", "alerts")
    op.drop_index("ix_alerts_one_open", "alerts")
    op.drop_table("alerts")
    op.drop_table("alert_rules")
    op.drop_table("entered_tickets")
    op.drop_index("ix_entry_minutes_minute", "entry_minutes")
    op.drop_table("entry_minutes")
    op.drop_table("lanes")
