"""Keys, sessions and tickets at the hub, and what reaches an appliance through the change log."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.errors import CatalogError
from cloud.catalog.events import create_event
from cloud.catalog.tables import seats
from cloud.catalog.venues import add_gate, add_zone, create_venue
from cloud.core.changes import changes_since, open_changes
from cloud.core.db import init_db, make_engine
from cloud.core.errors import HubError
from cloud.fleet.keys import SigningKeyError, activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.seats import InventoryError
from cloud.inventory.sessions import create_session
from cloud.inventory.tables import session_seats
from cloud.sales.tables import tickets
from cloud.sales.tickets import TicketError, TicketSpec, issue_ticket, issue_tickets, revoke_ticket
from edge import db as edge_db
from edge.allowlist import apply_changes
from edge.engine import Engine, IdDocument, Scan, ScanKind
from edge.holders import HolderVault, generate_holder_key
from edge.reasons import Reason
from sync import codes
from sync.changes import parse_change
from sync.sample import resident_id
from sync.timeutil import utcnow

START = datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
HOLDER_ID = resident_id("11010119900307123")


@pytest.fixture
def hub(hub_url, key_store):
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "North Stand")
        add_zone(conn, venue, "B", "South Stand")
        add_gate(conn, venue, "G1", "Gate 1", ["A"], realname_mode="ticket_and_id")
        assert import_seats_csv(conn, venue, "level,zone,row,number,category,damaged\n"
                                "L1,A,1,1,std,\nL1,A,1,2,std,\nL1,B,2,1,std,yes\n").ok
        event = create_event(conn, "GAMES", "The Games")
        session = create_session(conn, event, venue, "Opening", START, START + timedelta(hours=3),
                                 START - timedelta(hours=1))
    yield engine, venue, session
    engine.dispose()


def seat(conn, row, number, level="L1"):
    return conn.execute(sa.select(seats.c.id).where(seats.c.level == level, seats.c.row == row,
                                                    seats.c.number == number)).scalar_one()


def test_a_seat_is_sold_once_and_the_unique_index_backs_the_inventory_up(hub):
    engine, venue, session = hub
    with engine.begin() as conn:
        issue_ticket(conn, session_id=session, seat_id=seat(conn, "1", "1"))
    with pytest.raises(InventoryError, match="not for sale"):
        with engine.begin() as conn:
            issue_ticket(conn, session_id=session, seat_id=seat(conn, "1", "1"))
    with pytest.raises(TicketError, match="already has a live ticket"):
        with engine.begin() as conn:  # as if the inventory had a bug: the index still holds
            conn.execute(sa.update(session_seats).values(status="available"))
            issue_ticket(conn, session_id=session, seat_id=seat(conn, "1", "1"))


def test_concurrent_sales_of_one_seat_sell_it_once(hub):
    engine, venue, session = hub
    with engine.connect() as conn:
        target = seat(conn, "1", "2")
    results: list[str] = []
    barrier = threading.Barrier(6)

    def sell() -> None:
        barrier.wait()
        try:
            with engine.begin() as conn:
                issue_ticket(conn, session_id=session, seat_id=target)
            results.append("sold")
        except HubError:
            results.append("refused")

    threads = [threading.Thread(target=sell) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["refused"] * 5 + ["sold"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)
                            .where(tickets.c.seat_id == target)).scalar() == 1


def test_session_configuration(hub):
    engine, venue, session = hub
    with engine.begin() as conn:
        a, b = seat(conn, "1", "1"), seat(conn, "1", "2")
        cats = dict(conn.execute(sa.select(session_seats.c.seat_id, session_seats.c.category)
                                 .where(session_seats.c.session_id == session)).all())
        assert cats[a] == "sellable" and len(cats) == 3 and "occupied" in cats.values()
        inventory.set_category(conn, session, [a], "registered")
        inventory.set_category(conn, session, [b], "emergency")
        inventory.confirm_configuration(conn, session)
        with pytest.raises(inventory.InventoryError, match="only emergency seats"):
            inventory.set_category(conn, session, [a], "sellable")
        inventory.set_category(conn, session, [b], "sellable")  # emergency may still change
    with pytest.raises(InventoryError, match="not for sale"):
        with engine.begin() as conn:
            issue_ticket(conn, session_id=session, seat_id=a)  # registered: not sellable
    with engine.connect() as conn:  # the venue map is untouched
        assert conn.execute(sa.select(sa.func.count()).select_from(seats)).scalar() == 3


def test_reserved_seats_and_venue_map_changes(hub):
    engine, venue, session = hub
    with engine.begin() as conn:
        b = seat(conn, "1", "2")
        inventory.reserve(conn, session, [b], "Team Delegation", utcnow() + timedelta(days=1))
    with pytest.raises(InventoryError, match="reserved for someone else"):
        with engine.begin() as conn:
            issue_ticket(conn, session_id=session, seat_id=b)
    with engine.begin() as conn:
        issue_ticket(conn, session_id=session, seat_id=b, customer="Team Delegation")
        # the venue adds a seat: the session, not yet on sale, gets it; after going on sale,
        # a later seat does not reach it
        import_seats_csv(conn, venue, "level,zone,row,number,category\nL1,A,9,1,std\n")
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
        import_seats_csv(conn, venue, "level,zone,row,number,category\nL1,A,9,2,std\n")
        in_session = conn.execute(sa.select(sa.func.count()).select_from(session_seats)
                                  .where(session_seats.c.session_id == session)).scalar()
    assert in_session == 4


def test_a_refund_puts_the_seat_back_on_sale(hub):
    engine, venue, session = hub
    with engine.begin() as conn:
        first = issue_ticket(conn, session_id=session, seat_id=seat(conn, "1", "1"))
        revoke_ticket(conn, first.id)
        again = issue_ticket(conn, session_id=session, seat_id=seat(conn, "1", "1"))
    assert again.id != first.id


def test_a_damaged_seat_or_a_bad_holder_cannot_be_sold(hub):
    engine, venue, session = hub
    with pytest.raises(TicketError, match="cannot be sold"):
        with engine.begin() as conn:
            damaged = conn.execute(sa.select(seats.c.id).where(seats.c.damaged)).scalar_one()
            issue_ticket(conn, session_id=session, seat_id=damaged)
    with pytest.raises(TicketError, match="check digit") as err:
        with engine.begin() as conn:
            issue_ticket(conn, session_id=session, seat_id=seat(conn, "1", "2"),
                         holder=("张三", "resident_id", HOLDER_ID[:-1] + "0"))
    assert HOLDER_ID[:-1] not in str(err.value)


@pytest.mark.parametrize("key_store", ["wrapped", "token"], indirect=True)
def test_a_key_signs_only_once_active(hub):
    engine, venue, session = hub
    with engine.begin() as conn:
        new = create_key(conn)
        with pytest.raises(SigningKeyError, match="only a published key"):
            activate_key(conn, 99)
        first = issue_ticket(conn, session_id=session)
        activate_key(conn, new)
        second = issue_ticket(conn, session_id=session)
    assert codes.read(first.code).payload.key_id == 1
    assert codes.read(second.code).payload.key_id == new


@pytest.mark.parametrize("key_store", ["wrapped", "token"], indirect=True)
def test_the_hub_change_log_drives_a_real_appliance(hub, tmp_path):
    """Hub → change log → edge database → engine: sold tickets admit, refunds are refused,
    real-name tickets need the holder's own ID."""
    engine, venue, session = hub
    with engine.begin() as conn:
        plain = issue_ticket(conn, session_id=session, seat_id=seat(conn, "1", "1"))
        named = issue_ticket(conn, session_id=session, seat_id=seat(conn, "1", "2"),
                             holder=("张小三", "resident_id", HOLDER_ID))
        refunded = issue_ticket(conn, session_id=session, zone_id=0)
        revoke_ticket(conn, refunded.id)
        with pytest.raises(TicketError, match="already refunded"):
            revoke_ticket(conn, refunded.id)

    path = tmp_path / "edge.db"
    edge_db.migrate(edge_db.open_db(path))
    conn_edge = edge_db.connect(path)
    vault = HolderVault(generate_holder_key())
    with engine.connect() as conn:
        page = open_changes(conn, changes_since(conn, venue, 0))  # as served
    apply_changes(conn_edge, vault, [parse_change(c) for c in page])
    conn_edge.execute("INSERT INTO lanes (id, code, gate_id) VALUES (1, 'N1', "
                      "(SELECT id FROM gates WHERE code = 'G1'))")
    lane_engine = Engine(conn_edge, vault)
    at = START - timedelta(minutes=30)

    assert lane_engine.decide(Scan(ScanKind.QR, plain.code), "N1", at).reason is Reason.OK
    assert lane_engine.decide(Scan(ScanKind.QR, refunded.code), "N1", at).reason is Reason.REVOKED
    assert lane_engine.decide(Scan(ScanKind.QR, named.code), "N1",
                              at).reason is Reason.REALNAME_REQUIRED
    own = IdDocument("resident_id", HOLDER_ID)
    d = lane_engine.decide(Scan(ScanKind.QR, named.code, document=own), "N1", at)
    assert d.reason is Reason.OK and d.holder_masked.name == "张*三"
    assert d.ticket.seat == "L1-1-2"


def test_rfid_uids_from_the_printing_house(hub):
    from cloud.core.audit import audit_log
    from cloud.sales.tables import tickets
    from cloud.sales.tickets import import_rfid_csv

    engine, venue, session = hub
    with engine.begin() as conn:
        a = issue_ticket(conn, session_id=session)
        b = issue_ticket(conn, session_id=session)
        c = issue_ticket(conn, session_id=session)
        revoke_ticket(conn, c.id)
    bad = (f"ticket_number,rfid_uid\n{a.number},04:A1:B2:C3\n{b.number},zz\n"
           f"T999999999,04A1B2C4\n{c.number},04A1B2C5\n{b.number},04a1b2c3\n")
    with engine.begin() as conn:
        report = import_rfid_csv(conn, bad, actor="test")
    assert report.assigned == 0
    assert [e.split(":")[0] for e in report.errors] == ["line 3", "line 6", "line 4", "line 5"]
    good = f"ticket_number,rfid_uid\n{a.number},04:A1:B2:C3\n{b.number},04 a1 b2 c4\n"
    with engine.begin() as conn:
        report = import_rfid_csv(conn, good, actor="test")
    assert report.assigned == 2 and not report.errors
    with engine.connect() as conn:
        uids = dict(conn.execute(sa.select(tickets.c.number, tickets.c.rfid_uid)
                                 .where(tickets.c.rfid_uid.is_not(None))).all())
        last = changes_since(conn, venue, 0)[-1]
        assert conn.execute(sa.select(audit_log.c.after).where(
            audit_log.c.action == "ticket.rfid_import")).scalars().all() == [{"assigned": 2}]
    assert uids == {a.number: "04A1B2C3", b.number: "04A1B2C4"}
    assert last["type"] == "ticket" and last["rfid_uid"] == "04A1B2C4"
    parse_change(last)


def test_a_pass_with_a_fixed_seat_holds_it_in_every_session(hub):
    engine, venue, session = hub
    with engine.begin() as conn:
        event = conn.execute(sa.text("SELECT event_id FROM sessions")).scalar()
        evening = create_session(conn, event, venue, "Evening", START + timedelta(hours=6),
                                 START + timedelta(hours=9))
        target = seat(conn, "1", "1")
        pass_ = issue_ticket(conn, kind=codes.Kind.SESSIONS, scope=(session, evening),
                             seat_id=target, daily_limit=2)
    for s in (session, evening):
        with pytest.raises(InventoryError, match="not for sale"):
            with engine.begin() as conn:
                issue_ticket(conn, session_id=s, seat_id=target)
    with engine.begin() as conn:
        revoke_ticket(conn, pass_.id)
        issue_ticket(conn, session_id=evening, seat_id=target)


@pytest.mark.parametrize("key_store", ["wrapped", "token"], indirect=True)
def test_keys_retire_and_the_venues_hear_of_it(hub):
    from cloud.fleet.keys import retire_key

    engine, venue, session = hub
    with engine.begin() as conn:
        with pytest.raises(SigningKeyError, match="active key"):
            retire_key(conn, 1)
        second = create_key(conn)
        activate_key(conn, second)
        retire_key(conn, 1)
        last = changes_since(conn, venue, 0)[-1]
    assert last["type"] == "key" and last["key_id"] == 1 and last["retired_at"]
    parse_change(last)


def test_price_tiers_are_integer_fen_and_belong_to_their_session(hub):
    from cloud.catalog.events import add_price_tier

    engine, venue, session = hub
    with engine.begin() as conn:
        tier = add_price_tier(conn, session, "A", "Category A", 88_000)
        for bad in (880.0, -1, True):
            with pytest.raises(CatalogError, match="fen"):
                add_price_tier(conn, session, "X", "Bad", bad)
        with pytest.raises(CatalogError, match="ISO 4217"):
            add_price_tier(conn, session, "Y", "Bad", 1, currency="yuan")
        sold = issue_ticket(conn, session_id=session, seat_id=seat(conn, "1", "1"),
                            price_tier_id=tier)
        row = conn.execute(sa.select(tickets.c.amount, tickets.c.currency)
                           .where(tickets.c.id == sold.id)).one()
        assert tuple(row) == (88_000, "CNY")
        event = conn.execute(sa.text("SELECT event_id FROM sessions")).scalar()
        other = create_session(conn, event, venue, "Other", START + timedelta(days=2),
                               START + timedelta(days=2, hours=1))
    with pytest.raises(TicketError, match="not one of this session's"):
        with engine.begin() as conn:
            issue_ticket(conn, session_id=other, price_tier_id=tier)


def test_what_staff_do_is_audited_with_before_and_after(hub):
    from cloud.core.audit import audit_log

    engine, venue, session = hub
    with engine.begin() as conn:
        sold = issue_ticket(conn, session_id=session, seat_id=seat(conn, "1", "1"),
                            holder=("张小三", "resident_id", HOLDER_ID), actor="staff:7")
        revoke_ticket(conn, sold.id, actor="staff:7")
        inventory.set_category(conn, session, [seat(conn, "1", "2")], "emergency",
                               actor="staff:7")
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.actor == "staff:7")
                            .order_by(audit_log.c.id)).all()
        everything = str(conn.execute(sa.select(audit_log)).all())
    assert [r.action for r in rows] == ["ticket.issue", "ticket.refund",
                                        "session.seats.category"]
    assert rows[1].before == {"state": "issued"} and rows[1].after == {"state": "refunded"}
    assert HOLDER_ID not in everything and "张小三" not in everything
    assert {"venue.create", "zone.create", "gate.create", "seats.import", "session.create",
            "key.create", "key.activate"} <= {a for a in everything.split("'") if "." in a}


# -- ticket numbers ----------------------------------------------------------------------------


def test_ticket_numbers_are_random_fixed_length_and_carry_a_check_symbol(hub):
    from sync import numbers

    engine, _venue, session = hub
    with engine.begin() as conn:
        issued = issue_tickets(conn, [TicketSpec(session_id=session) for _ in range(300)])
    got = [t.number for t in issued]
    assert len(set(got)) == len(got)
    for number in got:
        assert len(number) == numbers.LENGTH == 11
        assert set(number) <= set(numbers.ALPHABET) and not set(number) & set("ILOU")
        assert numbers.is_number(number) and numbers.check_symbol(number[:-1]) == number[-1]
    # nothing follows from a neighbour's number: consecutive tickets share no long prefix,
    # and the numbers are in no order of their ids
    pairs = zip(got, got[1:], strict=False)
    assert max(len(os.path.commonprefix([a, b])) for a, b in pairs) < 5
    assert got != sorted(got) and got != sorted(got, reverse=True)
    # every symbol turns up in every random position
    for position in range(numbers.RANDOM_SYMBOLS):
        assert len({n[position] for n in got}) > 20


def test_a_number_already_taken_is_drawn_again(hub, monkeypatch):
    from cloud.sales import tickets as tickets_mod
    from sync import numbers

    engine, _venue, session = hub
    with engine.begin() as conn:
        taken = issue_ticket(conn, session_id=session).number
    draws = iter([taken, taken, "7KQ2M9XAPC" + numbers.check_symbol("7KQ2M9XAPC")])
    monkeypatch.setattr(numbers, "new_number", lambda: next(draws))
    with engine.begin() as conn:
        again = tickets_mod.issue_ticket(conn, session_id=session)
    assert again.number == "7KQ2M9XAPC" + numbers.check_symbol("7KQ2M9XAPC") != taken
