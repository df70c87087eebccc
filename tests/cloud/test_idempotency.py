"""Idempotency keys: the rule (claim, answer, replay, reuse, expiry, concurrency on PostgreSQL)
and the JSON API's ``Idempotency-Key`` header on real write endpoints."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.core import idempotency
from cloud.core.idempotency import Answer, IdempotencyError, idempotency_keys
from cloud.sales.tables import tickets
from tests.cloud.test_api import api  # noqa: F401 - the API fixture, shared

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
H1 = idempotency.request_hash("POST", "/api/v1/sessions/1/tickets", b'{"seat_id": 1}')
H2 = idempotency.request_hash("POST", "/api/v1/sessions/1/tickets", b'{"seat_id": 2}')


def _do(engine, key, digest=H1, now=NOW, body=b'{"ok": 1}', scope="staff:1"):
    """A request's transaction: the replayed answer, or None after doing (and storing) it."""
    with engine.begin() as conn:
        answer = idempotency.begin(conn, scope, key, digest, now)
        if answer is None:
            idempotency.finish(conn, scope, key, 201, body)
        return answer


def test_a_retried_request_gets_the_first_answer_byte_for_byte(engine):
    assert _do(engine, "k-1") is None
    again = _do(engine, "k-1", body=b"something else")
    assert again == Answer(201, "application/json", b'{"ok": 1}')
    assert _do(engine, "k-1", scope="staff:2") is None  # another caller's keys are its own


def test_the_same_key_for_a_different_request_is_refused(engine):
    assert _do(engine, "k-1") is None
    with pytest.raises(IdempotencyError) as e:
        _do(engine, "k-1", digest=H2)
    assert (e.value.code, e.value.status) == ("idempotency_key_reused", 422)
    other_path = idempotency.request_hash("POST", "/api/v1/sessions/2/tickets",
                                          b'{"seat_id": 1}')
    with pytest.raises(IdempotencyError, match="different request"):
        _do(engine, "k-1", digest=other_path)


def test_a_refused_request_leaves_its_key_free(engine):
    """The key is claimed in the work's transaction: a refusal rolls both back, so a retry is
    judged again rather than answered with the refusal."""
    with pytest.raises(RuntimeError), engine.begin() as conn:
        assert idempotency.begin(conn, "staff:1", "k-1", H1, NOW) is None
        raise RuntimeError("refused")
    assert _do(engine, "k-1") is None


@pytest.mark.parametrize("key", ["", "x" * 256, "é", "line\nbreak", "tab\there"])
def test_a_key_must_be_1_to_255_printable_ascii_characters(engine, key):
    with pytest.raises(IdempotencyError) as e:
        _do(engine, key)
    assert (e.value.code, e.value.status) == ("idempotency_key_bad", 400)
    assert _do(engine, "x" * 255) is None and _do(engine, "a b~!") is None


def test_keys_are_kept_a_day_then_free_and_tidied(engine):
    assert _do(engine, "old") is None
    assert _do(engine, "new", now=NOW + timedelta(hours=20)) is None
    # within the day: replayed, even for a different body
    with pytest.raises(IdempotencyError):
        _do(engine, "old", digest=H2, now=NOW + timedelta(hours=23, minutes=59))
    with engine.begin() as conn:
        assert idempotency.tidy(conn, NOW + timedelta(hours=23)) == 0
        assert idempotency.tidy(conn, NOW + timedelta(hours=25)) == 1
        with pytest.raises(ValueError):
            idempotency.tidy(conn, NOW, keep=timedelta(hours=1))
        assert conn.execute(sa.select(idempotency_keys.c.key)).scalars().all() == ["new"]
    # past the day, even before it is tidied, a key is free again
    assert _do(engine, "new", digest=H2, now=NOW + timedelta(hours=44, minutes=1)) is None


def _waiting_on_lock(engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar())


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_concurrent_request_with_the_key_waits_then_replays(engine):
    """Two connections, one key: the second waits on the first's claim and, once the first
    commits its work, gets its answer: the work ran once."""
    first = engine.connect()
    got: list = []

    def second() -> None:
        try:
            got.append(_do(engine, "k-1"))
        except BaseException as e:  # noqa: BLE001 - checked below
            got.append(e)

    t = threading.Thread(target=second, daemon=True)
    try:
        first.begin()
        assert idempotency.begin(first, "staff:1", "k-1", H1, NOW) is None
        t.start()
        deadline = time.monotonic() + 30
        while not _waiting_on_lock(engine):  # the order of events, not a duration, is tested
            assert time.monotonic() < deadline and t.is_alive(), got
            time.sleep(0.01)
        idempotency.finish(first, "staff:1", "k-1", 201, b'{"first": true}')
        first.commit()
    finally:
        first.rollback()  # a no-op once committed; frees the key if the test failed before
        first.close()
        if t.ident is not None:  # started
            t.join(30)
    assert got == [Answer(201, "application/json", b'{"first": true}')]


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_request_waiting_too_long_is_told_in_progress(engine):
    with engine.connect() as first:
        first.begin()
        assert idempotency.begin(first, "staff:1", "k-1", H1, NOW) is None
        with pytest.raises(IdempotencyError) as e, engine.begin() as conn:
            idempotency.begin(conn, "staff:1", "k-1", H1, NOW, wait_ms=50)
        assert (e.value.code, e.value.status) == ("idempotency_in_progress", 409)
        # the waiting transaction rolled back; the first still holds the key and goes on
        assert first.execute(sa.text("SHOW lock_timeout")).scalar() == "0"
        first.rollback()
    assert _do(engine, "k-1") is None  # the first rolled back: the key is free


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_claim_leaves_the_transactions_lock_timeout_as_it_was(engine):
    """The claim bounds its own wait and puts the wait back, whether it took the key or
    found its answer."""
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL lock_timeout = '7s'"))
        assert idempotency.begin(conn, "staff:1", "k-1", H1, NOW, wait_ms=50) is None
        assert conn.execute(sa.text("SHOW lock_timeout")).scalar() == "7s"
        idempotency.finish(conn, "staff:1", "k-1", 201, b"{}")
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL lock_timeout = '8s'"))
        assert idempotency.begin(conn, "staff:1", "k-1", H1, NOW, wait_ms=50) \
            == Answer(201, "application/json", b"{}")
        assert conn.execute(sa.text("SHOW lock_timeout")).scalar() == "8s"


# --- the HTTP header ---------------------------------------------------------------------------

def _sell(client, headers, session, key=None, seat=1):
    h = {**headers, **({"Idempotency-Key": key} if key is not None else {})}
    return client.post(f"/api/v1/sessions/{session}/tickets", headers=h, json={"seat_id": seat})


def test_a_sale_retried_with_its_key_is_sold_once_and_answered_the_same(api):  # noqa: F811
    client, tokens, session = api
    first = _sell(client, tokens["sales"], session, "sale-1")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = _sell(client, tokens["sales"], session, "sale-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    with client.application.extensions["db"].connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar() == 1
    other = _sell(client, tokens["sales"], session, "sale-1", seat=2)
    assert other.status_code == 422 and other.get_json()["error"] == "idempotency_key_reused"
    # without a key, the seat is refused as sold: the answer above was a replay, not a sale
    assert _sell(client, tokens["sales"], session).status_code == 409


def test_a_refused_request_is_not_remembered(api):  # noqa: F811
    client, tokens, session = api
    refused = client.post("/api/v1/tickets/T000000999/refund",
                          headers={**tokens["sales"], "Idempotency-Key": "refund-1"})
    assert refused.status_code == 404
    with client.application.extensions["db"].connect() as conn:
        assert conn.execute(sa.select(sa.func.count())
                            .select_from(idempotency_keys)).scalar() == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "\x7f"])
def test_a_bad_key_is_refused_naming_the_header(api, key):  # noqa: F811
    client, tokens, session = api
    r = _sell(client, tokens["sales"], session, key)
    assert r.status_code == 400
    assert r.get_json()["error"] == "idempotency_key_bad"
    assert "Idempotency-Key" in r.get_json()["message"]


def test_staff_writes_take_the_key(api):  # noqa: F811
    client, tokens, _ = api
    headers = {**tokens["admin"], "Idempotency-Key": "venue-1"}
    first = client.post("/api/v1/venues", headers=headers, json={"code": "AQC", "name": "Aq"})
    again = client.post("/api/v1/venues", headers=headers, json={"code": "AQC", "name": "Aq"})
    assert first.status_code == again.status_code == 201
    assert first.get_data() == again.get_data()
    staff = client.get("/api/v1/staff", headers=tokens["admin"]).get_json()["staff"]
    ops = next(s["id"] for s in staff if s["username"] == "ops-user")
    headers = {**tokens["admin"], "Idempotency-Key": "disable-ops"}
    assert client.post(f"/api/v1/staff/{ops}/disable", headers=headers).get_json()["changed"]
    # the first answer (changed: true), not a second judgement (changed: false)
    assert client.post(f"/api/v1/staff/{ops}/disable", headers=headers).get_json()["changed"]
