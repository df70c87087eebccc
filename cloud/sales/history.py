"""A ticket's entries at the gates, as the appliances pushed them: what the ticket page and
the order page show."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.catalog.tables import venues
from cloud.fleet.tables import appliances, entries

MAX_HISTORY = 200


def entry_history(conn: sa.Connection, ticket_id: int) -> list:
    """The ticket's entries as the appliances pushed them, newest first (the latest
    :data:`MAX_HISTORY`): time, appliance, lane, direction, admitted or refused and the
    reason."""
    return conn.execute(
        sa.select(entries.c.at, entries.c.lane, entries.c.direction, entries.c.admitted,
                  entries.c.reason, appliances.c.name.label("appliance"),
                  venues.c.name.label("venue"), venues.c.timezone)
        .join(appliances, appliances.c.id == entries.c.appliance_id)
        .outerjoin(venues, venues.c.id == entries.c.venue_id)
        .where(entries.c.ticket_id == ticket_id)
        .order_by(entries.c.at.desc(), entries.c.seq.desc()).limit(MAX_HISTORY)).all()
