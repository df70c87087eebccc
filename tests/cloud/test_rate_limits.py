"""Rate limits on signing in, the staff API and enrollment, counted in the hub's database so
that several app processes share one count — on both databases. Counts, not time: the rules
take a fixed clock, and every window in the app tests is an hour long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from cloud.app import create_app
from cloud.core import rate_limits
from cloud.core.db import init_db
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from cloud.web.limits import BLOCK_SHARE, HubStorage, block_size
from tests.cloud.pagekit import SECRET, csrf

T0 = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)


def test_a_window_counts_its_hits_and_the_next_one_starts_again(engine):
    hour = timedelta(hours=1)
    with engine.begin() as conn:
        assert [rate_limits.hit(conn, "login/1.2.3.4", hour, T0) for _ in range(3)] == [1, 2, 3]
        assert rate_limits.hit(conn, "login/5.6.7.8", hour, T0, amount=2) == 2
        assert rate_limits.count(conn, "login/1.2.3.4", T0 + hour / 2) == (3, T0 + hour)
        assert rate_limits.count(conn, "login/1.2.3.4", T0 + hour) == (0, None)
        assert rate_limits.hit(conn, "login/1.2.3.4", hour, T0 + hour) == 1
        rate_limits.clear(conn, "login/5.6.7.8")
        assert rate_limits.count(conn, "login/5.6.7.8", T0) == (0, None)


def test_the_limits_library_counts_on_the_database_with_a_fixed_clock(engine):
    clock = [T0]
    storage = HubStorage("wicket-hub://", engine=engine, clock=lambda: clock[0])
    limiter, limit = FixedWindowRateLimiter(storage), parse("3 per hour")
    assert [limiter.hit(limit, "10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(limit, "10.0.0.2")  # another address has its own count
    clock[0] = T0 + timedelta(minutes=59)
    assert not limiter.hit(limit, "10.0.0.1")
    assert limiter.get_window_stats(limit, "10.0.0.1").remaining == 0
    clock[0] = T0 + timedelta(hours=1)
    assert limiter.hit(limit, "10.0.0.1")
    assert storage.check()


def test_a_busy_limit_is_taken_a_block_at_a_time_and_never_lets_more_through(engine):
    # two app processes (two storages) share "200 per hour" for one address: each takes 4
    # hits (200 // BLOCK_SHARE) from the database at once; together they let through at most
    # 200, and at least 200 less what one process may hold unused
    clock = [T0]
    limit = parse("200 per hour")
    assert block_size(limit.key_for("10.0.0.1")) == 200 // BLOCK_SHARE == 4
    assert block_size(parse("20 per minute").key_for("10.0.0.1")) == 1
    storages = [HubStorage("wicket-hub://", engine=engine, clock=lambda: clock[0])
                for _ in range(2)]
    writes = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda *a: writes.append(1) if "rate_limits" in a[2] else None)
    limiters = [FixedWindowRateLimiter(s) for s in storages]
    let_through = sum(limiters[n % 2].hit(limit, "10.0.0.1") for n in range(300))
    assert 200 - 3 <= let_through <= 200
    assert len(writes) <= 300 // 4 + 4  # hit by hit it would be 300 and more
    with engine.connect() as conn:
        assert rate_limits.count(conn, limit.key_for("10.0.0.1"), T0)[0] >= 200
    clock[0] = T0 + timedelta(hours=1)  # the next window: the blocks held are no use
    assert all(lim.hit(limit, "10.0.0.1") for lim in limiters)


def _app(url, **config):
    return create_app({"DATABASE_URL": url, "TESTING": True, "SECRET_KEY": SECRET, **config})


def _retry_after(r) -> int:
    return int(r.headers["Retry-After"])


def test_sign_in_is_limited_per_address_across_app_processes(hub_url):
    init_db(hub_url)
    # two apps on one database: two gunicorn workers, each with its own limiter
    apps = [_app(hub_url, SIGN_IN_LIMIT="3 per hour") for _ in range(2)]
    try:
        with apps[0].extensions["db"].begin() as conn:
            create_staff(conn, "li", "correct horse battery", "sales", actor="test")
        clients = [a.test_client() for a in apps]
        tokens = [csrf(c) for c in clients]
        answers = [clients[n % 2].post("/login", data={
            "username": "li", "password": "wrong", "csrf_token": tokens[n % 2]}).status_code
            for n in range(3)]
        assert answers == [401, 401, 401]
        r = clients[1].post("/login", data={"username": "li", "password": "correct horse "
                                            "battery", "csrf_token": tokens[1]})
        assert r.status_code == 429 and 0 < _retry_after(r) <= 3600
        assert "Too many attempts" in r.get_data(as_text=True)
        assert clients[0].get("/login").status_code == 200  # only the POST is counted
        # another address is not held up by this one's attempts
        r = clients[0].post("/login", data={"username": "li", "password": "correct horse "
                                            "battery", "csrf_token": tokens[0]},
                            environ_base={"REMOTE_ADDR": "192.0.2.7"})
        assert r.status_code == 303
    finally:
        for a in apps:
            a.extensions["db"].dispose()


def test_api_tokens_and_enrollment_are_limited_with_a_json_429(hub_url):
    init_db(hub_url)
    app = _app(hub_url, API_LIMIT="2 per hour", ENROLL_LIMIT="1 per hour")
    try:
        with app.extensions["db"].begin() as conn:
            _, token = create_token(conn, create_staff(conn, "ops", "correct horse battery",
                                                       "ops", actor="test"), "wall", actor="test")
        c = app.test_client()
        auth = {"Authorization": f"Bearer {token}"}
        assert [c.get("/api/v1/venues", headers=auth).status_code for _ in range(2)] == [200,
                                                                                         200]
        r = c.get("/api/v1/venues", headers={"Authorization": "Bearer guessed"})
        assert r.status_code == 429 and 0 < _retry_after(r) <= 3600
        assert r.get_json()["error"] == "rate_limited"
        assert c.post("/api/sync/v1/enroll", json={"token": "0" * 64}).status_code != 429
        r = c.post("/api/sync/v1/enroll", json={"token": "1" * 64})
        assert r.status_code == 429 and r.get_json()["error"] == "rate_limited"
        assert 0 < _retry_after(r) <= 3600
    finally:
        app.extensions["db"].dispose()


def test_limits_can_be_turned_off(hub_url):
    init_db(hub_url)
    app = _app(hub_url, ENROLL_LIMIT="1 per hour", RATELIMIT_ENABLED=False)
    try:
        c = app.test_client()
        statuses = [c.post("/api/sync/v1/enroll", json={"token": "0" * 64}).status_code
                    for _ in range(3)]
        assert 429 not in statuses, statuses
    finally:
        app.extensions["db"].dispose()


# -- speed: the API's limit set for `wicket-hub serve` through its environment --------------


def test_the_api_limit_is_set_through_the_environment_for_serve(hub_url, monkeypatch):
    init_db(hub_url)
    monkeypatch.setenv("WICKET_HUB_API_LIMIT", "1 per hour")
    app = _app(hub_url)
    try:
        assert app.config["API_LIMIT"] == "1 per hour"
        c = app.test_client()
        statuses = [c.get("/api/v1/venues", headers={"Authorization": "Bearer guessed"})
                    .status_code for _ in range(2)]
        assert statuses == [401, 429]
    finally:
        app.extensions["db"].dispose()
