"""The waiting room's rules on both databases, on explicit times (nothing waits for a clock):
first come, first admitted; a token kept keeps its place and a new one is later; forged,
altered, expired and other sessions' tokens are refused; admission follows the rate and a
quiet moment banks no more than a burst; concurrent entries get distinct consecutive numbers;
the checkout's pass is checked."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.tables import sessions
from cloud.core.audit import audit_log
from cloud.inventory import seats as inventory
from cloud.inventory.sessions import create_session, edit_session
from cloud.storefront import waiting_room as wr
from cloud.storefront.tables import waiting_rooms
from cloud.storefront.waiting_room import QueueError
from tests.cloud.orderkit import NOW, START, build

SECRET = b"a hub secret of at least thirty-two characters"


def config(rate=2.0, burst=1, **more) -> wr.RoomConfig:
    return wr.RoomConfig(secret=SECRET, rate=rate, burst=burst, **more)


@pytest.fixture
def hub(hub_url, key_store):
    h = build(hub_url)
    yield h
    h.engine.dispose()


def enter(hub, cfg, now=NOW, token=None, session=None):
    with hub.engine.begin() as conn:
        return wr.enter(conn, cfg, session or hub.session, now, token)[0]


def poll(hub, cfg, token, now=NOW, session=None):
    with hub.engine.connect() as conn:
        return wr.poll(conn, cfg, session or hub.session, token, now)


def refused(code, call, *args, **kwargs) -> None:
    with pytest.raises(QueueError) as e:
        call(*args, **kwargs)
    assert e.value.code == code


def test_visitors_are_numbered_and_admitted_first_come_at_the_rate(hub):
    cfg = config(rate=2.0, burst=1)
    places = [enter(hub, cfg) for _ in range(5)]  # all at the same moment
    assert [p.number for p in places] == [1, 2, 3, 4, 5]
    assert [p.admitted for p in places] == [True, False, False, False, False]
    assert [p.ahead for p in places] == [0, 0, 1, 2, 3]
    assert [p.estimate_s for p in places] == [0, 1, 1, 2, 2]  # two a second
    # half a second later the second is in; two seconds later the fifth
    assert [poll(hub, cfg, p.token, NOW + timedelta(seconds=0.5)).admitted
            for p in places] == [True, True, False, False, False]
    assert [poll(hub, cfg, p.token, NOW + timedelta(seconds=1.5)).admitted
            for p in places] == [True, True, True, True, False]
    last = poll(hub, cfg, places[4].token, NOW + timedelta(seconds=2))
    assert last.admitted and last.pass_token and last.ahead == 0


def test_presenting_a_token_again_keeps_its_place_and_entering_again_is_later(hub):
    cfg = config(rate=1.0, burst=1)
    first, second = enter(hub, cfg), enter(hub, cfg)
    again = enter(hub, cfg, NOW + timedelta(milliseconds=100), token=second.token)
    assert (again.number, again.token, again.admitted) == (2, second.token, False)
    fresh = enter(hub, cfg, NOW + timedelta(milliseconds=200))
    assert fresh.number == 3 and fresh.ahead == 1
    # refreshing a hundred times changes nothing
    for n in range(100):
        assert poll(hub, cfg, second.token, NOW + timedelta(milliseconds=n)).number == 2
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(waiting_rooms.c.issued)).scalar_one() == 3
    assert first.admitted


def test_forged_altered_expired_and_other_sessions_tokens_are_refused(hub):
    cfg = config(rate=1.0, burst=1, token_hours=1)
    token = enter(hub, cfg).token
    kind, session, number, expires, mac = token.split(".")
    with hub.engine.begin() as conn:
        other = create_session(conn, hub.event, hub.venue, "Other", START + timedelta(days=1),
                               START + timedelta(days=1, hours=2))
        inventory.confirm_configuration(conn, other)
        inventory.put_on_sale(conn, other)
    better = ".".join((kind, session, "1" if number != "1" else "0", expires, mac))
    longer = ".".join((kind, session, number, str(int(expires) + 3600), mac))
    moved = ".".join((kind, str(other), number, expires, mac))
    # a token made as the hub makes them, with another key
    forged = enter(hub, wr.RoomConfig(secret=b"another secret of thirty-two characters",
                                      rate=1.0, burst=1)).token
    for bad in (better, longer, moved, forged, "", "wq1", token + "x", token.upper()):
        refused("queue_token_invalid", poll, hub, cfg, bad)
    refused("queue_token_invalid", poll, hub, cfg, token, session=other)
    refused("queue_token_invalid", enter, hub, cfg, token=forged)
    refused("queue_token_expired", poll, hub, cfg, token, NOW + timedelta(hours=1))
    # a pass is not a queue token, nor a queue token a pass
    admitted = poll(hub, cfg, token)
    refused("queue_token_invalid", poll, hub, cfg, admitted.pass_token)
    with hub.engine.connect() as conn:
        refused("admission_pass_invalid", wr.check_admission, conn, cfg, hub.session, token,
                NOW)


def test_a_quiet_moment_banks_no_more_than_a_burst(hub):
    cfg = config(rate=10.0, burst=3)
    assert enter(hub, cfg).admitted
    # an hour later 36,000 admissions would have accrued without the cap; only three may pass
    later = NOW + timedelta(hours=1)
    crowd = [enter(hub, cfg, later) for _ in range(8)]
    assert [p.admitted for p in crowd] == [True, True, True, False, False, False, False, False]
    assert [p.estimate_s for p in crowd[3:]] == [1, 1, 1, 1, 1]  # 0.1 s to 0.5 s away
    tenth = later + timedelta(seconds=0.3)
    assert [poll(hub, cfg, p.token, tenth).admitted for p in crowd] == [True] * 6 + [False] * 2


def test_admission_follows_the_rate_over_a_long_queue(hub):
    cfg = config(rate=5.0, burst=1)
    tokens = [enter(hub, cfg, NOW + timedelta(milliseconds=n)).token for n in range(200)]
    for seconds in (1, 10, 20, 39):
        at = NOW + timedelta(seconds=seconds, milliseconds=500)
        admitted = sum(poll(hub, cfg, t, at).admitted for t in tokens)
        assert admitted == 1 + int(5 * (seconds + 0.5))  # the first at once, then 5 a second


def test_a_changed_rate_counts_from_its_moment_and_takes_no_admission_back(hub):
    cfg = config(rate=1.0, burst=1)
    places = [enter(hub, cfg) for _ in range(20)]
    at = NOW + timedelta(seconds=10)
    assert sum(poll(hub, cfg, p.token, at).admitted for p in places) == 11
    with hub.engine.begin() as conn:
        wr.set_session_room(conn, cfg, hub.session, 0.5, None, at, actor="ops")
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(
            audit_log.c.action == "storefront.waiting_room")).scalar_one() == 1
    assert sum(poll(hub, cfg, p.token, at).admitted for p in places) == 11
    assert sum(poll(hub, cfg, p.token, at + timedelta(seconds=4)).admitted
               for p in places) == 13
    # a session with a rate of 0 has no room: everyone is let through, no pass needed
    with hub.engine.begin() as conn:
        wr.set_session_room(conn, cfg, hub.session, 0, None, at, actor="ops")
        assert not wr.needs_pass(conn, cfg, hub.session)
        assert wr.check_admission(conn, cfg, hub.session, None, at) is False
    assert poll(hub, cfg, places[-1].token, at).admitted


def test_the_queue_is_open_only_while_the_session_sells(hub):
    cfg = config()
    with hub.engine.begin() as conn:
        edit_session(conn, hub.session, sale_opens_at=NOW + timedelta(minutes=5))
    refused("queue_not_open", enter, hub, cfg)
    assert enter(hub, cfg, NOW + timedelta(minutes=5)).number == 1
    refused("unknown_session", enter, hub, cfg, session=hub.session + 100)
    with hub.engine.begin() as conn:
        conn.execute(sa.update(sessions).where(sessions.c.id == hub.session)
                     .values(on_sale=False))
    refused("unknown_session", enter, hub, cfg, NOW + timedelta(minutes=6))


def test_the_checkout_needs_a_pass_of_the_session_while_its_room_is_on(hub):
    cfg = config(rate=1.0, burst=1, pass_minutes=10)
    with hub.engine.connect() as conn:
        assert wr.needs_pass(conn, cfg, hub.session)
        assert not wr.needs_pass(conn, config(rate=0), hub.session)
        refused("admission_required", wr.check_admission, conn, cfg, hub.session, None, NOW)
    first, second = enter(hub, cfg), enter(hub, cfg)
    assert second.pass_token is None
    good = first.pass_token
    with hub.engine.connect() as conn:
        assert wr.check_admission(conn, cfg, hub.session, good, NOW + timedelta(minutes=9))
        refused("admission_pass_expired", wr.check_admission, conn, cfg, hub.session, good,
                NOW + timedelta(minutes=10))
        refused("admission_pass_invalid", wr.check_admission, conn, cfg, hub.session + 1,
                good, NOW)
        refused("admission_pass_invalid", wr.check_admission, conn, cfg, hub.session,
                good[:-2] + ("AA" if not good.endswith("AA") else "BB"), NOW)


def test_settings_are_checked(hub):
    assert wr.room_config("s" * 32, {}).rate == 0
    assert wr.room_config("s" * 32, {"WAITING_ROOM_RATE": "2.5"}).rate == 2.5
    for name, value in (("WAITING_ROOM_RATE", "-1"), ("WAITING_ROOM_RATE", "fast"),
                        ("WAITING_ROOM_BURST", "0"), ("WAITING_ROOM_BURST", 1.5),
                        ("WAITING_ROOM_PASS_MINUTES", "0"), ("WAITING_ROOM_TOKEN_HOURS", 99)):
        with pytest.raises(QueueError) as e:
            wr.room_config("s" * 32, {name: value})
        assert e.value.code == "bad_queue_setting" and e.value.params["field"] == name
    with hub.engine.begin() as conn:
        refused("bad_queue_setting", wr.set_session_room, conn, config(), hub.session, -2, None,
                NOW, "ops")
        refused("unknown_session", wr.set_session_room, conn, config(), hub.session + 9, 1,
                None, NOW, "ops")


def test_concurrent_entries_get_distinct_consecutive_numbers(hub):
    cfg = config(rate=1.0, burst=1)
    visitors = 16
    numbers: list[int] = []
    problems: list[str] = []
    barrier = threading.Barrier(visitors)

    def visit() -> None:
        barrier.wait()
        try:
            numbers.append(enter(hub, cfg, NOW).number)
        except Exception as e:  # noqa: BLE001 - an outcome, so the comparison shows it
            problems.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=visit) for _ in range(visitors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert problems == []
    assert sorted(numbers) == list(range(1, visitors + 1))
    at = NOW + timedelta(seconds=5)
    with hub.engine.connect() as conn:
        room = wr.read_room(conn, cfg, hub.session)
    assert room.issued == visitors and int(room.admitted_at(at)) == 6
