"""Risk flags on both databases at fixed times: each kind refuses what it should and nothing
else (buying, refunds, entry), for a buyer or a holder; expiry and lifting stop a flag at once;
every change is audited with the holder masked; an entry flag travels the change log sealed,
reaches a real appliance database as a block of its own keyed hash, refuses the holder's
ticket at the gate, and lets it in again once lifted or expired."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloud.catalog.venues import add_gate, create_venue
from cloud.core.audit import audit_log
from cloud.core.changes import change_log, changes_since, open_changes
from cloud.core.errors import HubError
from cloud.sales.flag_blocks import send_entry_blocks
from cloud.sales.flags import (
    add_flag,
    get_flag,
    lift_flag,
    list_flags,
    refuse_buying,
)
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import capture, create_order
from cloud.sales.refunds import quote, request_refund
from cloud.sales.tables import risk_flags
from edge import db as edge_db
from edge.allowlist import apply_changes
from edge.engine import Engine, IdDocument, Scan, ScanKind
from edge.holders import HolderVault, generate_holder_key
from edge.reasons import Reason
from sync.changes import parse_change
from sync.sample import resident_id
from tests.cloud.orderkit import NOW, START, build

ANNA = resident_id("11010119900307123")
BORIS = resident_id("31010119851111234")
STAFF = "staff:1"


@pytest.fixture
def hub(hub_url):
    h = build(hub_url)
    yield h
    h.engine.dispose()


def order(h, seat_numbers=(1,), buyer=None, holders=None, now=NOW):
    holders = holders or [None] * len(seat_numbers)
    lines = tuple(LineRequest(seat_id=h.seat("A", "2", n),
                              holder=("持票人", "resident_id", doc) if doc else None)
                  for n, doc in zip(seat_numbers, holders, strict=True))
    with h.engine.begin() as conn:
        return create_order(conn, OrderRequest(h.session, lines, buyer=buyer, actor="clerk"),
                            now)


def paid(h, seat_numbers=(1,), buyer=None, holders=None):
    made = order(h, seat_numbers, buyer, holders)
    with h.engine.begin() as conn:
        got = capture(conn, made.order_id, made.total, "offline", f"ref-{made.number}", NOW)
    return made, got.tickets


def flag(h, now=NOW, **kw):
    with h.engine.begin() as conn:
        return add_flag(conn, actor=STAFF, now=now, **{"reason": "chargeback fraud", **kw})


def refused(fn, *args, **kw) -> HubError:
    with pytest.raises(HubError) as e:
        fn(*args, **kw)
    return e.value


def ask_refund(h, made, now=NOW, bulk=False):
    with h.engine.begin() as conn:
        return request_refund(conn, made.order_id, None, "staff:2", "asked", now, bulk=bulk)


# -- buying -----------------------------------------------------------------------------------


def test_a_buy_flag_on_a_buyer_refuses_their_orders_and_nothing_else(hub):
    made, _ = paid(hub, (1,), buyer="buyer:7")
    flag(hub, blocks="buy", buyer="buyer:7")
    e = refused(order, hub, (2,), buyer="buyer:7")
    assert (e.code, e.params["field"], e.status) == ("buyer_may_not_buy", "buyer", 409)
    assert order(hub, (3,), buyer="buyer:8").number          # another buyer buys
    assert order(hub, (4,), holders=[ANNA]).number            # a booth sale without buyer
    assert ask_refund(hub, made)                              # buying is all it blocks


def test_a_buy_flag_on_a_holder_refuses_any_line_naming_their_document(hub):
    flag(hub, blocks="buy", holder=("resident_id", ANNA.lower()))  # stored normalised
    e = refused(order, hub, (1, 2), holders=[BORIS, ANNA])
    assert (e.code, e.params["field"]) == ("holder_may_not_buy", "lines.1.holder")
    assert order(hub, (1, 2), holders=[BORIS, None]).number
    with hub.engine.connect() as conn:  # the rule alone, as any seller calls it
        refuse_buying(conn, None, [None, BORIS], NOW)
        assert refused(refuse_buying, conn, None, [ANNA], NOW).code == "holder_may_not_buy"


def test_a_refused_order_holds_nothing(hub):
    flag(hub, blocks="buy", buyer="buyer:7")
    refused(order, hub, (1,), buyer="buyer:7")
    assert order(hub, (1,), buyer="buyer:9").number  # the seat was never held


# -- refunds ----------------------------------------------------------------------------------


def test_a_refunds_flag_refuses_the_request_for_the_buyer_or_a_holder_and_nothing_else(hub):
    by_buyer, _ = paid(hub, (1,), buyer="buyer:7")
    by_holder, _ = paid(hub, (2,), buyer="buyer:8", holders=[ANNA])
    other, _ = paid(hub, (3,), buyer="buyer:9", holders=[BORIS])
    flag(hub, blocks="refunds", buyer="buyer:7")
    flag(hub, blocks="refunds", holder=("resident_id", ANNA))
    e = refused(ask_refund, hub, by_buyer)
    assert (e.code, e.params["field"]) == ("buyer_refunds_blocked", "buyer")
    e = refused(ask_refund, hub, by_holder)
    assert (e.code, e.params["field"]) == ("holder_refunds_blocked", "tickets")
    assert ask_refund(hub, other)
    assert order(hub, (4,), buyer="buyer:7", holders=[ANNA]).number  # buying goes on
    with hub.engine.connect() as conn:  # the amount shown before confirming says so too
        assert refused(quote, conn, by_buyer.order_id, None, NOW).code == "buyer_refunds_blocked"
        assert quote(conn, by_buyer.order_id, None, NOW, bulk=True).amount == by_buyer.total


def test_a_cancelled_sessions_bulk_refund_is_owed_whatever_the_flags(hub):
    made, _ = paid(hub, (1,), buyer="buyer:7")
    flag(hub, blocks="refunds", buyer="buyer:7")
    assert ask_refund(hub, made, bulk=True)


# -- expiry and lifting -----------------------------------------------------------------------


def test_an_expired_flag_stops_counting_at_once_with_no_job(hub):
    flag(hub, blocks="buy", buyer="buyer:7", expires_at=NOW + timedelta(hours=1))
    refused(order, hub, (1,), buyer="buyer:7", now=NOW + timedelta(minutes=59))
    assert order(hub, (1,), buyer="buyer:7", now=NOW + timedelta(hours=1)).number
    with hub.engine.connect() as conn:
        assert list_flags(conn, now=NOW + timedelta(hours=1)) == []
        assert [f.state for f in list_flags(conn, state="expired",
                                            now=NOW + timedelta(hours=1))] == ["expired"]


def test_a_lifted_flag_stops_counting_and_is_audited(hub):
    fid = flag(hub, blocks="buy", holder=("resident_id", ANNA))
    refused(order, hub, (1,), holders=[ANNA])
    with hub.engine.begin() as conn:
        lift_flag(conn, fid, "staff:3", "  paid back  ", NOW + timedelta(minutes=5))
    assert order(hub, (1,), holders=[ANNA]).number
    with hub.engine.begin() as conn:
        e = refused(lift_flag, conn, fid, "staff:3", "again", NOW + timedelta(minutes=6))
        assert (e.code, e.params["state"]) == ("flag_not_live", "lifted")
        f = get_flag(conn, fid, NOW)
        rows = conn.execute(sa.select(audit_log).where(
            audit_log.c.subject == f"risk_flag:{fid}").order_by(audit_log.c.id)).all()
    assert (f.state, f.lifted_by, f.lift_reason) == ("lifted", "staff:3", "paid back")
    assert f.doc_masked == ANNA[:4] + "*" * 10 + ANNA[-4:]
    assert [(r.action, r.actor) for r in rows] == [("flag.add", STAFF), ("flag.lift", "staff:3")]
    assert rows[0].after["doc"] == f.doc_masked and ANNA not in json.dumps(rows[0].after)
    with hub.engine.connect() as conn:  # the number is sealed, the hash is keyed
        row = conn.execute(sa.select(risk_flags)).one()
    assert ANNA not in json.dumps([str(v) for v in row])


def test_what_a_flag_must_say(hub):
    cases = [
        ({"blocks": "sleep", "buyer": "buyer:1"}, "flag_blocks_unknown", "blocks"),
        ({"blocks": "buy"}, "flag_target_required", "target"),
        ({"blocks": "buy", "buyer": "buyer:1", "holder": ("resident_id", ANNA)},
         "flag_target_required", "target"),
        ({"blocks": "buy", "buyer": "7"}, "flag_buyer_bad", "buyer"),
        ({"blocks": "entry", "buyer": "buyer:7"}, "flag_entry_needs_holder", "target"),
        ({"blocks": "buy", "buyer": "buyer:7", "reason": "  "}, "flag_reason_required",
         "reason"),
        ({"blocks": "buy", "buyer": "buyer:7", "reason": "a\x00b"}, "flag_reason_required",
         "reason"),
        ({"blocks": "buy", "buyer": "buyer:7", "expires_at": NOW}, "flag_expiry_past",
         "expires_at"),
        ({"blocks": "buy", "holder": ("resident_id", ANNA[:-1] + "0")},
         "document_bad_check_digit", "doc_number"),
    ]
    for kw, code, field in cases:
        e = refused(flag, hub, **kw)
        assert (e.code, e.params.get("field")) == (code, field), kw
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(risk_flags)).scalar() == 0
        assert refused(lift_flag, conn, 99, STAFF, "x").code == "unknown_flag"


def test_flags_are_listed_by_state_kind_target_and_person(hub):
    a = flag(hub, blocks="buy", buyer="buyer:7")
    b = flag(hub, blocks="refunds", holder=("resident_id", ANNA))
    c = flag(hub, blocks="entry", holder=("resident_id", BORIS))
    with hub.engine.begin() as conn:
        lift_flag(conn, a, STAFF, "done", NOW)
        assert [f.id for f in list_flags(conn, now=NOW)] == [c, b]
        assert [f.id for f in list_flags(conn, state=None, now=NOW)] == [c, b, a]
        assert [f.id for f in list_flags(conn, state="lifted", now=NOW)] == [a]
        assert [f.id for f in list_flags(conn, blocks="entry", now=NOW)] == [c]
        assert [f.id for f in list_flags(conn, target="buyer", state=None, now=NOW)] == [a]
        assert [f.id for f in list_flags(conn, number=("resident_id", ANNA), now=NOW)] == [b]


# -- entry: the change log and the appliance --------------------------------------------------


def blocks_in_log(h, venue):
    with h.engine.connect() as conn:
        return [r for r in changes_since(conn, venue, 0) if r["type"] == "block"]


def test_an_entry_flag_is_a_sealed_block_at_every_venue_and_its_lift_a_delete(hub):
    with hub.engine.begin() as conn:
        second = create_venue(conn, "AQC", "Aquatics Centre")
    fid = flag(hub, blocks="entry", holder=("resident_id", ANNA))
    for venue in (hub.venue, second):
        (stored,) = blocks_in_log(hub, venue)
        assert ANNA not in json.dumps(stored) and stored["doc_number"].startswith("s1:")
        with hub.engine.connect() as conn:
            (served,) = open_changes(conn, [stored])
        assert (served["value"], served["doc_type"], served["doc_number"]) == (
            f"flag:{fid}", "resident_id", ANNA)
        parse_change(served)  # what the appliance will accept
    flag(hub, blocks="buy", holder=("resident_id", BORIS))  # no block for other kinds
    assert len(blocks_in_log(hub, hub.venue)) == 1
    with hub.engine.begin() as conn:
        lift_flag(conn, fid, STAFF, "cleared", NOW)
    for venue in (hub.venue, second):
        assert [(r["op"], r["value"]) for r in blocks_in_log(hub, venue)] == [
            ("upsert", f"flag:{fid}"), ("delete", f"flag:{fid}")]


def test_expiry_deletes_the_block_at_the_tasks_next_run_and_new_venues_get_live_blocks(hub):
    lasting = flag(hub, blocks="entry", holder=("resident_id", BORIS))
    brief = flag(hub, blocks="entry", holder=("resident_id", ANNA),
                 expires_at=NOW + timedelta(hours=1))
    with hub.engine.begin() as conn:
        assert send_entry_blocks(conn, NOW + timedelta(minutes=59)) == 0
        later = create_venue(conn, "AQC", "Aquatics Centre")
        assert send_entry_blocks(conn, NOW + timedelta(hours=1)) == 2
        assert send_entry_blocks(conn, NOW + timedelta(hours=2)) == 0  # once
        expired = conn.execute(sa.select(audit_log.c.actor).where(
            audit_log.c.action == "flag.expire")).scalars().all()
    assert expired == ["system"]
    assert [(r["op"], r["value"]) for r in blocks_in_log(hub, hub.venue)] == [
        ("upsert", f"flag:{lasting}"), ("upsert", f"flag:{brief}"),
        ("delete", f"flag:{brief}")]
    assert [(r["op"], r["value"]) for r in blocks_in_log(hub, later)] == [
        ("upsert", f"flag:{lasting}")]
    with hub.engine.connect() as conn:
        assert get_flag(conn, lasting).venues == (hub.venue, later)


def _appliance(h, tmp_path):
    path = tmp_path / "edge.db"
    edge_db.migrate(edge_db.open_db(path))
    conn = edge_db.connect(path)
    return conn, HolderVault(generate_holder_key())


def _sync(h, edge_conn, vault, cursor):
    """One allowlist pull as the sync endpoint serves it (personal fields opened)."""
    with h.engine.connect() as conn:
        page = open_changes(conn, changes_since(conn, h.venue, cursor))
    apply_changes(edge_conn, vault, [parse_change(c) for c in page])
    return max([cursor] + [c["seq"] for c in page])


def test_an_entry_flag_reaches_the_appliance_and_refuses_the_holder_until_lifted(hub, tmp_path):
    with hub.engine.begin() as conn:
        add_gate(conn, hub.venue, "G1", "Gate 1", ["A"], realname_mode="ticket_and_id")
    _, (anna_ticket, boris_ticket) = paid(hub, (1, 2), holders=[ANNA, BORIS])
    edge_conn, vault = _appliance(hub, tmp_path)
    cursor = _sync(hub, edge_conn, vault, 0)
    edge_conn.execute("INSERT INTO lanes (id, code, gate_id) VALUES (1, 'N1', "
                      "(SELECT id FROM gates WHERE code = 'G1'))")
    gate = Engine(edge_conn, vault)
    at = START - timedelta(minutes=30)

    def scan(ticket, doc):
        return gate.decide(Scan(ScanKind.QR, ticket.code,
                                document=IdDocument("resident_id", doc)), "N1", at).reason

    assert scan(anna_ticket, ANNA) is Reason.OK
    fid = flag(hub, blocks="entry", holder=("resident_id", ANNA))
    cursor = _sync(hub, edge_conn, vault, cursor)
    (row,) = edge_conn.execute("SELECT kind, value, doc_hash FROM blocklist").fetchall()
    assert row == ("holder", f"flag:{fid}", vault.doc_hash("resident_id", ANNA))
    assert ANNA not in json.dumps(edge_conn.execute("SELECT * FROM blocklist").fetchall())
    assert scan(anna_ticket, ANNA) is Reason.BLOCKED
    assert scan(boris_ticket, BORIS) is Reason.OK  # only the flagged holder
    with hub.engine.begin() as conn:
        lift_flag(conn, fid, STAFF, "cleared", NOW)
    _sync(hub, edge_conn, vault, cursor)
    assert edge_conn.execute("SELECT count(*) FROM blocklist").fetchone()[0] == 0
    edge_conn.execute("UPDATE entries SET admitted = 0")  # a new visit, not a re-entry
    assert scan(anna_ticket, ANNA) is Reason.OK


def test_a_data_key_rotation_reseals_flags_and_their_blocks(hub, tmp_path):
    from cloud.core.changes import reseal_changes
    from cloud.core.db import make_engine
    from cloud.core.seal import add_key, data_key_path, load_keyring
    from cloud.sales.flags import reseal_flags

    fid = flag(hub, blocks="entry", holder=("resident_id", ANNA))
    flag(hub, blocks="buy", holder=("resident_id", BORIS))
    key = tmp_path / "rotating.key"  # a copy of the run's key, rotated here only
    key.write_bytes(Path(data_key_path()).read_bytes())
    key.chmod(0o600)
    add_key(str(key))
    rotating = make_engine(hub.engine.url.render_as_string(hide_password=False), str(key))
    try:
        with rotating.begin() as conn:
            assert reseal_flags(conn, 0, 10)[2] == 2
            assert reseal_flags(conn, 0, 10)[2] == 0
            reseal_changes(conn, 0, 100)
            current = load_keyring(str(key)).current_id
            stored = conn.execute(sa.select(change_log.c.record).where(
                change_log.c.kind == "block")).scalar_one()
            assert stored["doc_number"].split(":")[1] == current
            assert open_changes(conn, [stored])[0]["doc_number"] == ANNA
            assert get_flag(conn, fid).doc_masked.endswith(ANNA[-4:])
            e = refused(refuse_buying, conn, None, [BORIS], NOW)  # the new key's hash
            assert e.code == "holder_may_not_buy"
    finally:
        rotating.dispose()
