"""A session's seat carries its price category (migration 0039 and the venue map keep it):
best-available at a tier of one category searches by it, and follows the map when a seat's
category changes, on sale or not — on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from cloud.catalog.tables import seats
from cloud.core.db import alembic_config
from cloud.inventory.holds import hold_best
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.tables import session_seats
from tests.cloud.orderkit import NOW, SEATS, bare_order, build


@pytest.fixture
def hub(hub_url, key_store):
    h = build(hub_url)
    yield h
    h.engine.dispose()


def _copies(h) -> dict[int, str]:
    with h.engine.connect() as conn:
        return dict(conn.execute(sa.select(session_seats.c.seat_id,
                                           session_seats.c.price_category)).all())


def _categories(h) -> dict[int, str]:
    with h.engine.connect() as conn:
        return dict(conn.execute(sa.select(seats.c.id, seats.c.category)).all())


def test_every_session_seat_has_its_seats_category(hub):
    assert _copies(hub) == _categories(hub)
    assert set(_copies(hub).values()) == {"vip", "std"}


def test_migration_0039_gives_the_seats_of_existing_sessions_their_category(hub, hub_url):
    hub.engine.dispose()
    cfg = alembic_config(hub_url)
    with hub.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0038")
    with hub.engine.begin() as conn:
        assert "price_category" not in {c["name"] for c in sa.inspect(conn).get_columns(
            "session_seats")}
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    hub.engine.dispose()
    assert _copies(hub) == _categories(hub)


def test_best_available_follows_a_seat_whose_category_changed_on_the_map(hub):
    until = NOW + timedelta(minutes=15)
    # row 1 of zone A becomes std: its best seat (rank 1) is now the best std seat
    changed = SEATS.replace(",A,1,3,vip", ",A,1,3,std")
    assert changed != SEATS
    with hub.engine.begin() as conn:
        assert import_seats_csv(conn, hub.venue, changed).updated == 1
    assert _copies(hub) == _categories(hub)
    with hub.engine.begin() as conn:
        std = hold_best(conn, hub.session, hub.zones["A"], 1, bare_order(conn), until, NOW,
                        category="std")
        vip = hold_best(conn, hub.session, hub.zones["A"], 1, bare_order(conn), until, NOW,
                        not_categories=frozenset({"std"}))
    assert std == {hub.seat("A", "1", 3): hub.zones["A"]}
    assert vip == {hub.seat("A", "1", 4): hub.zones["A"]}
