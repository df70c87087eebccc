"""Session pages: create a session on the venue's clock, price tiers, the seat configuration
(categories, reservations, confirm, on sale) — on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from cloud.catalog.tables import events, price_tiers, sessions
from cloud.core.audit import audit_log
from cloud.inventory.tables import session_seats
from tests.cloud.pagekit import build_hub, post, text


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    yield h
    h.engine.dispose()


def utc(dt):
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def test_sales_creates_a_session_in_venue_time(hub):
    sales = hub.client("sales")
    r = post(sales, "/sessions", {"event_code": "SWIM", "event_name": "Swimming",
                                  "venue_id": hub.venue, "name": "Heats",
                                  "starts_at": "2027-08-01T19:30", "ends_at": "2027-08-01T22:00",
                                  "gates_open_at": "2027-08-01T18:30"}, page="/sessions")
    assert r.status_code == 303
    with hub.engine.connect() as conn:
        s = conn.execute(sa.select(sessions).where(sessions.c.name == "Heats")).one()
        event_code = conn.execute(sa.select(events.c.code)
                                  .where(events.c.id == s.event_id)).scalar()
    assert event_code == "SWIM"
    shanghai = ZoneInfo("Asia/Shanghai")
    assert utc(s.starts_at) == datetime(2027, 8, 1, 19, 30, tzinfo=shanghai)
    assert utc(s.starts_at).hour == 11  # 19:30 in Shanghai is 11:30 UTC
    assert utc(s.gates_open_at) == datetime(2027, 8, 1, 18, 30, tzinfo=shanghai)
    listing = text(sales.get("/sessions"))
    assert "2027-08-01 19:30 CST" in listing
    assert "2027-08-01 19:30 CST" in text(sales.get(r.headers["Location"]))


def test_a_session_form_with_mistakes_says_which_fields(hub):
    sales = hub.client("sales")
    r = post(sales, "/sessions", {"venue_id": hub.venue, "name": "", "starts_at": "tomorrow",
                                  "ends_at": ""}, page="/sessions")
    assert r.status_code == 422
    page = text(r)
    assert "Choose an event" in page and "A session needs a name." in page
    assert "Not a date and time." in page and "Required." in page
    r = post(sales, "/sessions", {"event_id": "1", "venue_id": hub.venue, "name": "Backwards",
                                  "starts_at": "2027-08-01T19:30", "ends_at": "2027-08-01T18:00"},
             page="/sessions")
    assert r.status_code == 422 and "must end after it starts" in text(r)
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar() == 1


def test_price_tiers_are_whole_fen(hub):
    sales = hub.client("sales")
    path = f"/sessions/{hub.session}/tiers"
    assert post(sales, path, {"code": "A", "name": "Category A", "amount": "380.50"},
                page="/sessions").status_code == 303
    r = post(sales, path, {"code": "B", "name": "Category B", "amount": "3.999"},
             page="/sessions")
    assert "380 or 380.50" in text(sales.get(r.headers["Location"]))
    post(sales, path, {"code": "A", "name": "Again", "amount": "1"}, page="/sessions")
    with hub.engine.connect() as conn:
        tiers = conn.execute(sa.select(price_tiers.c.code, price_tiers.c.amount)).all()
    assert [tuple(t) for t in tiers] == [("A", 38050)]
    assert "380.50 CNY" in text(sales.get(f"/sessions/{hub.session}"))


def seat_ids(hub, row):
    with hub.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text(
            "SELECT s.id FROM seats s WHERE s.row = :row ORDER BY s.id"), {"row": row})]


def test_seat_categories_reservations_confirm_and_on_sale(hub):
    sales = hub.client("sales")
    base = f"/sessions/{hub.session}"
    page = text(sales.get(f"{base}/seats?zone=A"))
    assert page.count('name="seat"') == 5
    a = seat_ids(hub, "A1")
    r = post(sales, f"{base}/seats", {"zone": "A", "row": "", "seat": [a[0], a[1]],
                                      "action": "category", "category": "registered"},
             page="/sessions")
    assert r.status_code == 303
    until = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=3)).strftime(
        "%Y-%m-%dT%H:%M")
    r = post(sales, f"{base}/seats", {"zone": "B", "row": "B1", "all_matching": "yes",
                                      "action": "reserve", "customer": "张小三",
                                      "until": until}, page="/sessions")
    assert r.status_code == 303
    listing = text(sales.get(f"{base}/seats?zone=B"))
    assert "张*三" in listing and "张小三" not in listing
    with hub.engine.connect() as conn:
        rows = dict(conn.execute(sa.select(session_seats.c.seat_id, session_seats.c.category)
                                 .where(session_seats.c.session_id == hub.session)).all())
        reserved = conn.execute(sa.select(sa.func.count()).select_from(session_seats).where(
            session_seats.c.reserved_for == "张小三")).scalar()
    assert rows[a[0]] == rows[a[1]] == "registered" and rows[a[2]] == "sellable"
    assert reserved == 3
    detail = text(sales.get(base))
    assert "<td>registered</td><td class=\"num\">2</td>" in detail
    # a reservation in the past, and nothing selected, are refused with words
    r = post(sales, f"{base}/seats", {"zone": "A", "seat": [a[2]], "action": "reserve",
                                      "customer": "X", "until": "2001-01-01T00:00"},
             page="/sessions")
    assert r.status_code == 422 and "must end in the future" in text(r)
    r = post(sales, f"{base}/seats", {"zone": "A", "action": "category",
                                      "category": "occupied"}, page="/sessions")
    assert r.status_code == 422 and "Select at least one seat." in text(r)
    # on sale only after the configuration is confirmed; then only emergency seats change
    r = post(sales, f"{base}/on-sale", page="/sessions")
    assert "Confirm the seat configuration" in text(sales.get(r.headers["Location"]))
    assert post(sales, f"{base}/confirm", page="/sessions").status_code == 303
    assert post(sales, f"{base}/on-sale", page="/sessions").status_code == 303
    r = post(sales, f"{base}/seats", {"zone": "A", "seat": [a[2]], "action": "category",
                                      "category": "occupied"}, page="/sessions")
    assert r.status_code == 422 and "only emergency seats" in text(r)
    with hub.engine.connect() as conn:
        s = conn.execute(sa.select(sessions).where(sessions.c.id == hub.session)).one()
        actions = set(conn.execute(sa.select(audit_log.c.action).where(
            audit_log.c.actor == f"staff:{hub.staff['sales']}")).scalars())
    assert s.on_sale and s.config_confirmed_at is not None
    assert {"session.seats.category", "session.seats.reserve", "session.configuration.confirm",
            "session.on_sale"} <= actions
