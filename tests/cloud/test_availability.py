"""A session's availability over the API: counts per zone and per price tier, each seat of a
zone, cached for at most AVAILABILITY_MAX_AGE and never past a hold's deadline, ETags and
304, and the token's permission — on both databases, on a clock the test moves."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.app import create_app
from cloud.inventory.seats import claim, reserve
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import create_order
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from tests.cloud.orderkit import NOW, build


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def shop(hub_url, key_store):
    h = build(hub_url)
    with h.engine.begin() as conn:
        clerk = create_staff(conn, "clerk", "Harbour-lamp-2026", "sales", actor="test")
        writer = create_staff(conn, "writer", "Harbour-lamp-2026", "content", actor="test")
        h.token = {"Authorization": f"Bearer {create_token(conn, clerk, 'till', 'test')[1]}"}
        h.content = {"Authorization": f"Bearer {create_token(conn, writer, 'cms', 'test')[1]}"}
    h.app = create_app({"DATABASE_URL": hub_url, "TESTING": True, "RATELIMIT_ENABLED": False,
                        "AVAILABILITY_MAX_AGE": 1.0})
    h.clock = h.app.extensions["availability"].clock = Clock()
    h.client = h.app.test_client()
    yield h
    h.app.extensions["db"].dispose()
    h.engine.dispose()


def ask(h, query="", **headers):
    r = h.client.get(f"/api/v1/sessions/{h.session}/availability{query}",
                     headers={**h.token, **headers})
    return r


def hold_best(h, zone="A", tier="vip", n=1, now=NOW):
    line = LineRequest(zone_id=h.zones[zone], price_tier_id=getattr(h, tier))
    with h.engine.begin() as conn:
        return create_order(conn, OrderRequest(h.session, (line,) * n), now)


def test_availability_counts_seats_per_zone_and_price_tier(shop):
    sold, kept = shop.seat("A", "2", 1), shop.seat("B", "1", 4)
    hold_best(shop, n=2)
    with shop.engine.begin() as conn:
        claim(conn, shop.session, sold, None, NOW)
        reserve(conn, shop.session, [kept], "Ms Li", NOW + timedelta(days=3650))
    body = ask(shop).get_json()
    assert body["seats"] == {"free": 12, "held": 2, "sold": 1, "kept": 1, "closed": 0}
    zones = {z["code"]: {k: z[k] for k in ("free", "held", "sold", "kept")}
             for z in body["zones"]}
    assert zones == {"A": {"free": 9, "held": 2, "sold": 1, "kept": 0},
                     "B": {"free": 3, "held": 0, "sold": 0, "kept": 1}}
    tiers = {t["code"]: (t["free"], t["held"], t["sold"], t["amount"])
             for t in body["price_tiers"]}
    assert tiers == {"VIP": (4, 2, 0, 88000), "STD": (8, 0, 1, 38000)}
    assert body["changes_at"] == (NOW + timedelta(minutes=15)).isoformat()


def test_availability_of_a_zone_gives_each_seat_in_row_order(shop):
    held = hold_best(shop, n=2).seat_ids
    r = ask(shop, f"?zone={shop.zones['A']}")
    seats = r.get_json()["seat_map"]
    assert [(s["row"], s["number"]) for s in seats] == \
        [(row, str(n)) for row in ("1", "2") for n in range(1, 7)]
    assert {s["seat_id"] for s in seats if s["status"] == "held"} == set(held)
    assert r.get_json()["seats"]["free"] == 10
    assert ask(shop, "?zone=x").status_code == 400
    assert shop.client.get("/api/v1/sessions/999/availability",
                           headers=shop.token).status_code == 404


def test_a_sale_is_in_every_answer_read_max_age_after_it(shop):
    before = ask(shop)
    assert before.get_json()["seats"]["held"] == 0
    hold_best(shop)
    # within the bound the cached answer may still be served (here: it is, the same bytes)
    shop.clock.now = NOW + timedelta(seconds=0.9)
    assert ask(shop).data == before.data
    # at the bound it is read again
    shop.clock.now = NOW + timedelta(seconds=1)
    assert ask(shop).get_json()["seats"]["held"] == 1


def test_a_hold_past_its_deadline_is_free_at_once_in_the_cached_answer(shop):
    deadline = hold_best(shop).expires_at
    shop.clock.now = deadline - timedelta(seconds=0.2)
    assert ask(shop).get_json()["seats"]["held"] == 1
    shop.clock.now = deadline + timedelta(seconds=0.1)  # less than max_age after that read
    body = ask(shop).get_json()
    assert body["seats"]["held"] == 0 and body["changes_at"] is None


def test_an_unchanged_answer_is_304_with_its_etag(shop):
    first = ask(shop)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, max-age=1"
    shop.clock.now = NOW + timedelta(seconds=5)  # read again: the same availability
    again = ask(shop, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    hold_best(shop, now=NOW + timedelta(seconds=5))
    shop.clock.now = NOW + timedelta(seconds=10)
    changed = ask(shop, **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_availability_needs_a_token_that_may_sell(shop):
    url = f"/api/v1/sessions/{shop.session}/availability"
    assert shop.client.get(url).status_code == 401
    refused = shop.client.get(url, headers=shop.content)
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"


def test_many_asking_at_once_for_a_stale_answer_read_the_database_once(shop):
    ask(shop)
    shop.clock.now = NOW + timedelta(seconds=2)
    reads = []
    sa.event.listen(shop.app.extensions["db"], "before_cursor_execute",
                    lambda *a: reads.append(a[2]) if "session_seats.zone_id" in a[2] else None)
    cache = shop.app.extensions["availability"]
    barrier = threading.Barrier(8)

    def asker():
        barrier.wait()
        return cache.get(shop.session).etag

    threads, got = [], []
    for _ in range(8):
        t = threading.Thread(target=lambda: got.append(asker()))
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len(set(got)) == 1 and len(reads) == 1


def test_anyone_reads_an_on_sale_sessions_cached_availability_without_a_token(shop):
    url = f"/api/public/v1/sessions/{shop.session}/availability"
    public = shop.client.get(url)
    assert public.status_code == 200 and "Authorization" not in public.request.headers
    assert public.headers["Cache-Control"] == "public, max-age=1"
    assert public.data == ask(shop).data and public.get_json()["on_sale"] is True
    assert shop.client.get(url, headers={"If-None-Match": public.headers["ETag"]}
                           ).status_code == 304
    zone = shop.client.get(f"{url}?zone={shop.zones['A']}").get_json()
    assert zone["zone_id"] == shop.zones["A"] and zone["seat_map"]
    bad = shop.client.get(f"{url}?zone=A")
    assert bad.status_code == 400 and bad.get_json()["params"]["field"] == "zone"
    # no count against the per-address API limit: a cached read writes nothing
    writes = []
    sa.event.listen(shop.app.extensions["db"], "before_cursor_execute",
                    lambda *a: writes.append(a[2]))
    assert shop.client.get(url).status_code == 200 and writes == []


def test_a_session_off_sale_is_unknown_to_the_public(shop):
    from cloud.catalog.tables import sessions
    with shop.engine.begin() as conn:
        conn.execute(sa.update(sessions).where(sessions.c.id == shop.session)
                     .values(on_sale=False))
    url = f"/api/public/v1/sessions/{shop.session}/availability"
    hidden = shop.client.get(url)
    assert hidden.status_code == 404 and hidden.get_json()["error"] == "unknown_session"
    assert ask(shop).status_code == 200  # staff still see it
    assert shop.client.get("/api/public/v1/sessions/999999/availability").status_code == 404
