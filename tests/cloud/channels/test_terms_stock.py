"""Day products and bundles, and a day product's daily stock, on both databases: a quota of
kind ``day`` per day, made or changed for a run of days, never below what a day has sold;
bundles of existing products that are not bundles."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.errors import CatalogError
from cloud.catalog.events import create_event
from cloud.catalog.products import add_product
from cloud.catalog.tables import product_parts, products
from cloud.catalog.venues import create_venue
from cloud.channels import products_admin as admin
from cloud.channels.partner_terms import TermsError
from cloud.inventory.quotas import apply_quotas
from cloud.inventory.sessions import create_session
from cloud.inventory.tables import quotas

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)  # 17:00 in China
TODAY = date(2026, 7, 1)


@pytest.fixture
def spot(engine):
    with engine.begin() as conn:
        venue = create_venue(conn, "LAKE", "West Lake", "1 Lake Road", "Asia/Shanghai")
        day = admin.add_day_product(conn, "LAKE-DAY", "Lake day ticket", 12000, venue_id=venue,
                                    actor="t")
    return engine, venue, day


def test_a_day_products_stock_is_one_day_quota_per_day_and_never_below_what_is_sold(spot):
    engine, _venue, day = spot
    with engine.begin() as conn:
        assert admin.set_daily_stock(conn, day, TODAY, TODAY + timedelta(days=2), 50, "t",
                                     NOW) == 3
        keys = conn.execute(sa.select(quotas.c.key, quotas.c.kind, quotas.c.day,
                                      quotas.c.capacity).order_by(quotas.c.key)).all()
        assert keys == [(f"day:{day}:2026-07-0{n}", "day", date(2026, 7, n), 50)
                        for n in (1, 2, 3)]
        second = conn.execute(sa.select(quotas.c.id)
                              .where(quotas.c.key == f"day:{day}:2026-07-02")).scalar()
        assert apply_quotas(conn, {second: 30}) is None  # 30 sold on the 2nd
    with pytest.raises(TermsError) as below, engine.begin() as conn:
        admin.set_daily_stock(conn, day, TODAY, TODAY + timedelta(days=3), 20, "t", NOW)
    assert below.value.code == "stock_below_sold"
    assert below.value.params == {"day": "2026-07-02", "used": 30}
    with engine.begin() as conn:  # the refused change left every day as it was
        stock = admin.stock_for(conn, day, TODAY, 4)
        assert [(s["day"].day, s["capacity"], s["used"]) for s in stock] == [
            (1, 50, 0), (2, 50, 30), (3, 50, 0), (4, 0, 0)]
        admin.set_daily_stock(conn, day, TODAY + timedelta(days=1), TODAY + timedelta(days=3),
                              30, "t", NOW)
        assert [(s["capacity"], s["used"]) for s in admin.stock_for(conn, day, TODAY, 4)] == [
            (50, 0), (30, 30), (30, 0), (30, 0)]


BAD_STOCK = [
    ("first_day", (TODAY - timedelta(days=1), TODAY, 10)),  # yesterday in China
    ("first_day", (NOW, TODAY, 10)),  # a moment, not a day
    ("last_day", (TODAY, TODAY - timedelta(days=1), 10)),
    ("last_day", (TODAY, TODAY + timedelta(days=366), 10)),
    ("capacity", (TODAY, TODAY, -1)),
    ("capacity", (TODAY, TODAY, "10")),
]


def test_a_bad_stock_change_is_refused_by_name_and_makes_no_quota(spot):
    engine, _venue, day = spot
    refusals = []
    for _field, args in BAD_STOCK:
        with engine.begin() as conn:
            try:
                admin.set_daily_stock(conn, day, *args, "t", NOW)
                refusals.append(None)
            except TermsError as e:
                refusals.append((e.code, e.params["field"]))
    assert refusals == [("bad_terms_request", field) for field, _ in BAD_STOCK]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(quotas)).scalar() == 0


def test_only_a_day_product_has_a_daily_stock_and_only_a_venue_has_day_products(spot):
    engine, venue, day = spot
    with engine.begin() as conn:
        bundle = admin.add_bundle(conn, "LAKE-2", "Two days", 20000, {day: 2}, actor="t")
        with pytest.raises(TermsError) as not_day:
            admin.set_daily_stock(conn, bundle, TODAY, TODAY, 5, "t", NOW)
        assert not_day.value.params["field"] == "product_id"
        with pytest.raises(TermsError) as no_venue:
            admin.add_day_product(conn, "X", "X", 1, venue_id=venue + 100, actor="t")
        assert no_venue.value.params["field"] == "venue_id"


def test_a_bundle_keeps_its_parts_and_admits_where_they_do(spot):
    engine, venue, day = spot
    with engine.begin() as conn:
        other = create_venue(conn, "ARENA", "Arena", "2 Road", "Asia/Shanghai")
        start = NOW + timedelta(days=3)
        session = create_session(conn, create_event(conn, "SHOW", "Show"), other, "Night",
                                 start, start + timedelta(hours=2))
        show = add_product(conn, "SHOW-PASS", "Show pass", 5000, scope_kind="sessions",
                           scope=[session])
        bundle = admin.add_bundle(conn, "LAKE-SHOW", "Lake and show", 15000,
                                  {day: 1, show: 2}, actor="t")
        row = admin.product(conn, bundle)
        assert (row["kind"], row["scope_kind"], row["scope"], row["parts"]) == (
            "bundle", "venues", sorted([venue, other]), {day: 1, show: 2})
        for parts in ({bundle: 1}, {day: 21}, {day: 0}, {999999: 1}, {}):
            with pytest.raises((CatalogError, TermsError)):
                admin.add_bundle(conn, "BAD", "Bad", 1, parts, actor="t")
        assert conn.execute(sa.select(sa.func.count()).select_from(products)
                            .where(products.c.code == "BAD")).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(product_parts)).scalar() == 2


def test_the_catalog_refuses_a_bundle_without_parts_and_a_day_product_of_two_venues(spot):
    engine, venue, _day = spot
    with engine.begin() as conn:
        with pytest.raises(CatalogError) as no_parts:
            add_product(conn, "B", "B", 1, kind="bundle", scope_kind="venues", scope=[venue])
        assert no_parts.value.code == "bad_bundle_parts"
        with pytest.raises(CatalogError) as two:
            add_product(conn, "D", "D", 1, kind="day", scope_kind="venues",
                        scope=[venue, venue + 1])
        assert two.value.code == "bad_product_scope"
