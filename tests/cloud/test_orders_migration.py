"""Migration 0020 on a hub that has sold seats: its sessions stay scheduled and on sale, every
session seat gets its zone, row, position and rank from the venue map, sold seats stay sold
and unsellable, and orders can be taken at once; going back to 0018 keeps the sold seats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from cloud.core.db import alembic_config, init_db, make_engine
from cloud.core.errors import HubError
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order

pytestmark = pytest.mark.empty_hub  # migration tests: an empty database

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def _to(url: str, revision: str, down: bool = False) -> None:
    engine = make_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
    engine.dispose()


def _t(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns))


def _old_hub(url: str) -> None:
    """A hub at 0018: one venue, a row of three seats and one of two, a session on sale with
    the middle seat of the first row sold."""
    _to(url, "0018")
    engine = make_engine(url)
    start = NOW + timedelta(days=3)
    with engine.begin() as conn:
        conn.execute(sa.insert(_t("venues", "id", "code", "name")),
                     [{"id": 1, "code": "OSC", "name": "Olympic"}])
        conn.execute(sa.insert(_t("zones", "id", "venue_id", "code", "name")),
                     [{"id": 1, "venue_id": 1, "code": "A", "name": "North"}])
        conn.execute(sa.insert(_t("seats", "id", "venue_id", "zone_id", "level", "row",
                                  "number", "category")),
                     [{"id": i, "venue_id": 1, "zone_id": 1, "level": "L1", "row": row,
                       "number": number, "category": "std"}
                      for i, row, number in ((1, "1", "1"), (2, "1", "2"), (3, "1", "10"),
                                             (4, "2", "1"), (5, "2", "2"))])
        conn.execute(sa.insert(_t("events", "id", "code", "name")),
                     [{"id": 1, "code": "GAMES", "name": "Games"}])
        conn.execute(sa.insert(sa.table("sessions", *(sa.column(c) for c in (
            "id", "event_id", "venue_id", "name", "on_sale")), sa.column(
            "starts_at", sa.DateTime(timezone=True)), sa.column(
            "ends_at", sa.DateTime(timezone=True)), sa.column(
            "config_confirmed_at", sa.DateTime(timezone=True)))),
            [{"id": 1, "event_id": 1, "venue_id": 1, "name": "Final", "on_sale": True,
              "starts_at": start, "ends_at": start + timedelta(hours=2),
              "config_confirmed_at": NOW}])
        conn.execute(sa.insert(_t("session_seats", "session_id", "seat_id", "category",
                                  "status")),
                     [{"session_id": 1, "seat_id": i, "category": "sellable",
                       "status": "sold" if i == 2 else "available"} for i in range(1, 6)])
    engine.dispose()


def test_the_upgrade_places_every_seat_and_keeps_sold_seats_sold(hub_url):
    _old_hub(hub_url)
    assert "0020" in init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        rows = {r.seat_id: r for r in conn.execute(sa.text(
            "SELECT seat_id, status, zone_id, row_key, position, rank FROM session_seats"))}
        state = conn.execute(sa.text("SELECT state FROM sessions")).scalar()
    assert state == "scheduled"
    assert {i: (r.zone_id, r.row_key, r.position) for i, r in rows.items()} == {
        1: (1, "L1/1", 1), 2: (1, "L1/1", 2), 3: (1, "L1/1", 3),  # "10" after "2"
        4: (1, "L1/2", 1), 5: (1, "L1/2", 2)}
    assert rows[2].rank == 1 and sorted(r.rank for r in rows.values()) == [1, 2, 3, 4, 5]
    assert rows[2].status == "sold"
    with pytest.raises(HubError) as refused:
        with engine.begin() as conn:
            create_order(conn, OrderRequest(1, (LineRequest(seat_id=2),)), NOW)
    assert refused.value.code == "seat_not_for_sale"
    with engine.begin() as conn:
        made = create_order(conn, OrderRequest(1, (LineRequest(zone_id=1),) * 2), NOW)
    assert sorted(made.seat_ids) == [4, 5]  # the only two side by side still free
    engine.dispose()
    _to(hub_url, "0018", down=True)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        statuses = dict(conn.execute(sa.text(
            "SELECT seat_id, status FROM session_seats")).all())
    engine.dispose()
    assert statuses == {1: "available", 2: "sold", 3: "available", 4: "available",
                        5: "available"}
    assert "0020" in init_db(hub_url)
