"""No global hot row in the sale path: on PostgreSQL, sales for different venues go ahead
while another sale's transaction is still open (ticket ids, holder ids and change-log seqs
come from sequences; the change log's turn is per venue), and a venue's changes still commit
in seq order (the turn), so an appliance paging by cursor never skips one.

Each test holds one transaction open and runs the other with a lock timeout: it proves the
second does not wait (or does) by the outcome, not by a clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.events import create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.core import changes
from cloud.core.changes import changes_since, last_seq
from cloud.core.db import init_db, make_engine
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.sales.selling import sell
from cloud.sales.tickets import TicketSpec
from sync.sample import resident_id
from sync.timeutil import utcnow

pytestmark = pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)


@pytest.fixture
def hub(hub_url):
    """Two venues, each with two sessions on sale of two seats each: {venue: [sessions]}."""
    init_db(hub_url)
    engine = make_engine(hub_url)
    made: dict[int, list[int]] = {}
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        event = create_event(conn, "G", "Games")
        for code in ("OSC", "AQC"):
            venue = create_venue(conn, code, code)
            add_zone(conn, venue, "A", "North")
            import_seats_csv(conn, venue, "level,zone,row,number,category\n"
                                          "L1,A,1,1,std\nL1,A,1,2,std\n")
            start = utcnow() + timedelta(days=1)
            for name in ("Final", "Heat"):
                session = create_session(conn, event, venue, name, start,
                                         start + timedelta(hours=2))
                inventory.confirm_configuration(conn, session)
                inventory.put_on_sale(conn, session)
                made.setdefault(venue, []).append(session)
    yield engine, made
    engine.dispose()


def _seat(conn, venue: int, number: int) -> int:
    return conn.execute(sa.text("SELECT id FROM seats WHERE venue_id = :v AND number = :n"),
                        {"v": venue, "n": str(number)}).scalar_one()


def _sell(conn, venue: int, session: int, number: int = 1):
    """A real-name sale: a ticket, a holder, their changes and the ops counters."""
    holder = ("张三", "resident_id", resident_id("11010119900307123"))
    return sell(conn, session, [TicketSpec(seat_id=_seat(conn, venue, number), holder=holder)])


def _no_wait(conn) -> None:
    """A statement that must not wait: the blocker stays open until after it, so a wait would
    fail at this timeout, which a busy machine cannot reach without one."""
    conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))


def _must_wait(conn) -> None:
    """A statement expected to wait for the open blocker, and so to fail at this timeout."""
    conn.execute(sa.text("SET LOCAL lock_timeout = '1s'"))


def test_a_sale_for_another_venue_does_not_wait_for_an_open_sale(hub):
    engine, made = hub
    (v1, (s1, _)), (v2, (s2, _)) = made.items()
    with engine.connect() as first, engine.connect() as second:
        first.begin()
        [a] = _sell(first, v1, s1)
        second.begin()
        _no_wait(second)  # a wait for the first's rows or turn would fail here
        [b] = _sell(second, v2, s2)
        second.commit()
        first.commit()
    assert a.id != b.id and a.number != b.number
    with engine.connect() as conn:
        for venue, ticket in ((v1, a), (v2, b)):
            assert [c["id"] for c in changes_since(conn, venue, 0)
                    if c["type"] == "ticket"] == [ticket.id]


def test_a_sale_for_the_same_venue_waits_for_its_turn_in_the_log(hub):
    """The one thing two sales of one venue share: the venue's turn to append to the change
    log, taken last and held only to the commit; it keeps the venue's seqs in commit order."""
    engine, made = hub
    v1, (s1, s1b) = next(iter(made.items()))
    with engine.connect() as first, engine.connect() as second:
        first.begin()
        _sell(first, v1, s1)
        second.begin()
        _must_wait(second)
        with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
            _sell(second, v1, s1b)
        second.rollback()
        first.commit()


def test_a_reader_waits_for_an_open_writer_of_its_venue_only(hub):
    """last_seq, the top an appliance pages to, is read while the venue's turn is free: every
    change of the venue at or below it has committed."""
    engine, made = hub
    (v1, (s1, _)), (v2, _) = made.items()
    with engine.connect() as writer:
        writer.begin()
        _sell(writer, v1, s1)
        open_seq = writer.execute(sa.text("SELECT max(seq) FROM change_log")).scalar_one()
        with engine.connect() as reader:
            reader.begin()
            _no_wait(reader)
            assert last_seq(reader, v2) >= open_seq  # not waiting on venue 1's writer
            reader.rollback()
            reader.begin()
            _must_wait(reader)
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                last_seq(reader, v1)
            reader.rollback()
        writer.commit()
    with engine.connect() as conn:
        top = last_seq(conn, v1)
        assert open_seq in [c["seq"] for c in changes_since(conn, v1, 0, upto=top)]


def test_a_reader_that_fails_while_holding_the_turn_does_not_keep_it(hub, monkeypatch):
    """The turn last_seq takes belongs to the connection, not the transaction: a reader whose
    statement fails cannot unlock in its aborted transaction, so its connection is closed
    instead of going back to the pool with the venue's writers locked out."""
    engine, made = hub
    (v1, (s1, _)), _ = made.items()
    monkeypatch.setitem(changes.SEQUENCES, "change_log", "no_such_sequence")
    with engine.connect() as reader:
        with pytest.raises(sa.exc.ProgrammingError):
            last_seq(reader, v1)
        assert reader.invalidated
    monkeypatch.undo()
    with engine.connect() as writer:
        writer.begin()
        # waits at most while the closed reader's server process ends; a kept turn fails it
        writer.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
        _sell(writer, v1, s1)
        writer.commit()


def test_ticket_and_holder_ids_come_from_sequences_without_a_counter_row(hub):
    engine, made = hub
    (v1, (s1, _)), _ = made.items()
    with engine.begin() as conn:
        _sell(conn, v1, s1)
        assert conn.execute(sa.text(
            "SELECT count(*) FROM counters WHERE name IN ('ticket', 'holder', 'change_log')")
        ).scalar_one() == 0
        assert {r for (r,) in conn.execute(sa.text(
            "SELECT sequencename FROM pg_sequences"))} >= {
            "ticket_id_seq", "holder_id_seq", "change_log_seq"}
