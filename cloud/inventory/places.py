"""Where a seat sits for best-available: its row (level and row label), its position in the row
and its rank across the venue (1 is the best seat).

Positions number a row's seats in the natural order of their numbers ("2" before "10"), so two
seats are adjacent when their positions follow each other. Ranks put lower levels first, then
front rows (lower row labels), then seats nearer the middle of their row: the preference a
box office applies when it knows nothing else about the hall.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cloud.catalog.tables import seats


@dataclass(frozen=True)
class Place:
    zone_id: int
    row_key: str
    position: int
    rank: int


def natural(text: str) -> tuple:
    """A sort key that orders the digits in a label by their value ("A2" before "A10")."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                 for p in re.split(r"(\d+)", text) if p)


def places(seat_rows: list[Any]) -> dict[int, Place]:
    """The place of every seat in ``seat_rows`` (id, zone_id, level, row, number), seats being
    compared only with the others given (a venue map's seats in use)."""
    rows: dict[tuple[str, str], list[Any]] = {}
    for s in seat_rows:
        rows.setdefault((s.level, s.row), []).append(s)
    ordered = []
    for (level, row), members in rows.items():
        members.sort(key=lambda s: natural(s.number))
        centre = (len(members) - 1) / 2
        for position, s in enumerate(members, start=1):
            ordered.append(((natural(level), natural(row), abs(position - 1 - centre),
                             position), s, f"{level}/{row}", position))
    ordered.sort(key=lambda o: o[0])
    return {s.id: Place(s.zone_id, row_key, position, rank)
            for rank, (_, s, row_key, position) in enumerate(ordered, start=1)}


def venue_places(conn: sa.Connection, venue_id: int) -> dict[int, Place]:
    """The places of a venue's seats in use (not removed)."""
    return places(conn.execute(sa.select(
        seats.c.id, seats.c.zone_id, seats.c.level, seats.c.row, seats.c.number).where(
        seats.c.venue_id == venue_id, seats.c.removed.is_(False))).all())
