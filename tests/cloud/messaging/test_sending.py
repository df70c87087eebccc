"""Sending the outbox: a batch claimed with a lease, sent with no transaction open, recorded
while the lease is ours; retries with backoff, dead after the last attempt, refusals failed
for good; workers on PostgreSQL take disjoint batches without waiting."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.core.outbox import Outcome, backoff, claim, enqueue, outbox, record
from cloud.messaging.channels import Outgoing
from cloud.messaging.sending import Messenger

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


class Recording:
    """A provider that answers as it is told, and keeps what it was given."""

    def __init__(self, answer: str = "sent"):
        self.answer, self.batches = answer, []
        self.in_transaction: list[bool] = []
        self.engine = None

    def send(self, batch: list[Outgoing]) -> list[Outcome]:
        self.batches.append(batch)
        return [Outcome(self.answer, provider_ref=m.delivery_id if self.answer == "sent"
                        else None, error=None if self.answer == "sent" else "no")
                for m in batch]


def code(engine, to="13800138000", n=1, kind="sign_in_code", language="zh", channel="sms"):
    with engine.begin() as conn:
        return [enqueue(conn, kind=kind, channel=channel, to=to, language=language,
                        params={"code": f"{i:06d}", "minutes": 5}, now=NOW)
                for i in range(n)]


def row(engine, message_id):
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox).where(outbox.c.id == message_id)).one()


def test_a_turn_renders_sends_and_records_each_message(engine):
    ids = code(engine, n=3) + code(engine, to="13900139000", language="en")
    sms = Recording()
    assert Messenger(engine, {"sms": sms}, name="w1").turn(NOW) == {"sent": 4}
    texts = [m.body for m in sms.batches[0]]
    assert texts[0] == "【Wicket】您的登录验证码是 000000，5 分钟内有效。请勿告诉他人。"
    assert texts[3].startswith("[Wicket] Your sign-in code is 000000")
    assert [m.to for m in sms.batches[0]] == ["13800138000"] * 3 + ["13900139000"]
    for i in ids:
        r = row(engine, i)
        assert (r.state, r.attempts, r.taken_by) == ("sent", 1, None)
        assert r.provider_ref == r.delivery_id and r.sent_at == NOW
    assert Messenger(engine, {"sms": sms}, name="w1").turn(NOW) == {}


def test_a_failed_send_waits_its_backoff_and_is_dead_after_the_last_attempt(engine):
    (i,) = code(engine)
    down = Messenger(engine, {"sms": Recording("error")}, name="w1")
    now = NOW
    for attempt in range(1, 6):
        assert down.turn(now) == {"waiting": 1}
        r = row(engine, i)
        assert (r.state, r.attempts, r.run_after) == ("waiting", attempt, now + backoff(attempt))
        assert down.turn(r.run_after - timedelta(seconds=1)) == {}   # not due yet
        now = r.run_after
    assert down.turn(now) == {"dead": 1}
    r = row(engine, i)
    assert (r.state, r.attempts, r.last_error, r.finished_at) == ("dead", 6, "no", now)
    assert backoff(1) == timedelta(seconds=5) and backoff(3) == timedelta(seconds=20)


def test_a_refused_number_fails_at_once(engine):
    (i,) = code(engine)
    assert Messenger(engine, {"sms": Recording("refused")}).turn(NOW) == {"failed": 1}
    assert (row(engine, i).state, row(engine, i).attempts) == ("failed", 1)


def test_a_message_whose_worker_died_is_taken_again_after_its_lease(engine):
    (i,) = code(engine)
    with engine.begin() as conn:
        (first,) = claim(conn, "dead-worker", now=NOW, lease=timedelta(minutes=2))
    with engine.begin() as conn:
        assert claim(conn, "w2", now=NOW + timedelta(minutes=1)) == []
        (again,) = claim(conn, "w2", now=NOW + timedelta(minutes=2))
    assert again.delivery_id == first.delivery_id and again.attempts == 2
    with engine.begin() as conn:   # the first worker's late record changes nothing
        assert record(conn, [(first, Outcome("sent", "x"))], NOW) == {"lost": 1}
        assert record(conn, [(again, Outcome("sent", "y"))], NOW) == {"sent": 1}
    assert row(engine, i).provider_ref == "y"


def test_a_message_whose_worker_dies_on_every_attempt_is_dead(engine):
    (i,) = code(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(outbox).values(max_attempts=2))
    now = NOW
    for _ in range(2):
        with engine.begin() as conn:
            assert len(claim(conn, "dies", now=now, lease=timedelta(minutes=1))) == 1
        now += timedelta(minutes=1)
    with engine.begin() as conn:
        assert claim(conn, "w", now=now) == []
    r = row(engine, i)
    assert r.state == "dead" and "the worker was lost" in r.last_error


def test_a_channel_without_provider_is_not_taken(engine):
    (mail,) = code(engine, to="a@example.com", channel="email")
    (sms,) = code(engine)
    assert Messenger(engine, {"sms": Recording()}).turn(NOW) == {"sent": 1}
    assert (row(engine, mail).state, row(engine, mail).attempts) == ("waiting", 0)
    assert row(engine, sms).state == "sent"


def test_a_message_whose_template_cannot_render_fails(engine):
    with engine.begin() as conn:
        (i,) = [enqueue(conn, kind="sign_in_code", channel="sms", to="13800138000",
                        params={"minutes": 5}, now=NOW)]
    sms = Recording()
    assert Messenger(engine, {"sms": sms}).turn(NOW) == {"failed": 1}
    assert sms.batches == [] and "bad_template" in row(engine, i).last_error


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_two_workers_take_disjoint_batches_without_waiting_on_postgresql(engine):
    code(engine, n=10)
    first_claimed, release = threading.Event(), threading.Event()
    taken: dict[str, list[int]] = {}

    def hold_open():
        with engine.begin() as conn:   # claims, and keeps its row locks until released
            taken["a"] = [m.id for m in claim(conn, "a", now=NOW, limit=6)]
            first_claimed.set()
            release.wait(30)

    t = threading.Thread(target=hold_open)
    t.start()
    try:
        assert first_claimed.wait(30)
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")  # a wait would fail here
            taken["b"] = [m.id for m in claim(conn, "b", now=NOW, limit=10)]
    finally:
        release.set()
        t.join()
    assert len(taken["a"]) == 6 and len(taken["b"]) == 4
    assert not set(taken["a"]) & set(taken["b"])
