"""The admission rules as plain functions (no database), the engine's named rows, and the
coded details it records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge import facts, rules
from edge.engine import Scan, ScanKind
from edge.reasons import Reason
from edge.rules import LaneConfig, Lateness, Refused, Session, TicketFacts
from tests.conftest import NOW

SHANGHAI = ZoneInfo("Asia/Shanghai")


def lane(**changes) -> LaneConfig:
    base = dict(id=1, code="N1", direction="in", gate_id=1, reentry=False,
                realname_mode="ticket", open_before=timedelta(minutes=60),
                close_after=timedelta(minutes=30), zones=frozenset({1, 2}), venue_id=1,
                tz=SHANGHAI)
    return LaneConfig(**{**base, **changes})


def ticket(**changes) -> TicketFacts:
    base = dict(id=7, number="T7", serial=1, kind="session", role="ticket", scope=(1,),
                zone_id=1, seat=None, valid_from=None, valid_until=None, daily_limit=0,
                realname=False, current_serial=1)
    return TicketFacts(**{**base, **changes})


START = datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
SESSIONS = {1: Session(1, "Opening match", 1, START, START + timedelta(hours=2), None),
            2: Session(2, "Evening final", 1, START + timedelta(hours=8),
                       START + timedelta(hours=10), None)}


def refusal(call, *args) -> tuple[Reason, str, dict]:
    with pytest.raises(Refused) as e:
        call(*args)
    return e.value.reason, e.value.detail.code, dict(e.value.detail.params)


def test_standing_refuses_revoked_replaced_and_blocked_tickets():
    rules.check_standing(ticket())
    assert refusal(rules.check_standing, ticket(revoked=True, revoked_reason="refunded")) == (
        Reason.REVOKED, "revoked", {"why": "refunded"})
    assert refusal(rules.check_standing, ticket(state="void"))[:2] == (
        Reason.REVOKED, "ticket_void")
    assert refusal(rules.check_standing, ticket(serial=1, current_serial=2))[1] == "replaced"
    assert refusal(rules.check_standing, ticket(holder_blocked=True))[:2] == (
        Reason.BLOCKED, "holder_blocked")


def test_the_session_window_and_its_refusals_carry_their_values():
    assert rules.session_for(ticket(), lane(), SESSIONS, START) is SESSIONS[1]
    early = START - timedelta(hours=2)
    assert refusal(rules.session_for, ticket(), lane(), SESSIONS, early) == (
        Reason.NOT_YET_VALID, "gates_not_open",
        {"session": "Opening match", "at": "2026-07-01 18:00"})
    late = START + timedelta(hours=3)
    assert refusal(rules.session_for, ticket(), lane(), SESSIONS, late) == (
        Reason.EXPIRED, "session_over", {"session": "Opening match"})
    assert refusal(rules.session_for, ticket(scope=(9,)), lane(), SESSIONS, START)[1] == \
        "no_session_here"


def test_zone_realname_and_usage_rules():
    assert rules.zone_admitted(ticket(zone_id=2), lane())
    assert not rules.zone_admitted(ticket(zone_id=3), lane())
    assert rules.zone_admitted(ticket(zone_id=3), lane(zones=frozenset()))
    why = rules.wrong_gate("South Stand", ["Gate 2"]).detail
    assert why.text == "zone South Stand is not admitted at this gate: go to Gate 2"
    assert rules.wrong_gate("South Stand", []).detail.code == "wrong_gate_nowhere"
    named = ticket(realname=True, holder_hash="h1")
    ids = lane(realname_mode="ticket_and_id")
    assert refusal(rules.check_realname, named, ids, None, False, None, ValueError)[1] == \
        "realname_required"
    rules.check_realname(named, ids, object(), True, None, ValueError)  # found by the card
    rules.check_reentry(ticket(), lane(), None)
    assert refusal(rules.check_reentry, ticket(), lane(), "in")[1] == "already_inside"
    assert refusal(rules.check_reentry, ticket(), lane(), "out")[1] == "reentry_refused"
    rules.check_reentry(ticket(), lane(reentry=True), "out")
    rules.check_reentry(ticket(role="registered"), lane(), "out")
    assert refusal(rules.check_daily_limit, ticket(daily_limit=2), 2) == (
        Reason.ALREADY_ENTERED, "daily_limit", {"n": 2})
    assert not rules.usage_limited(ticket(role="staff"))


def test_an_offline_scan_that_arrived_late_is_refused_by_the_arrival_time():
    made = START + timedelta(minutes=30)
    session = SESSIONS[1]
    on_time = Lateness(arrived=made + timedelta(minutes=5))
    assert rules.too_late(lane(), made, on_time, session, None) is None
    after = Lateness(arrived=START + timedelta(hours=4))
    assert rules.too_late(lane(), made, after, session, None) == rules.detail(
        "late_window", at="2026-07-01 21:30")  # 13:30 UTC
    aged = Lateness(arrived=made + timedelta(minutes=20), max_age=timedelta(minutes=15))
    assert rules.too_late(lane(), made, aged, session, None).params == {"n": 15}


def test_the_named_rows_match_their_statements_columns(loaded):
    for sql, row_type in ((facts.LANE_SQL, facts.LaneRow), (facts.BY_ID, facts.TicketRow)):
        cursor = loaded.execute(sql, (1,))
        assert tuple(c[0] for c in cursor.description) == row_type._fields


def test_the_entry_keeps_the_details_code_and_parameters(engine, venue, loaded):
    code = venue.tickets[1002].code
    assert engine.decide(Scan(ScanKind.QR, code), "N1", NOW).detail_code == ""
    d = engine.decide(Scan(ScanKind.QR, code), "N2", NOW)
    assert (d.detail, d.detail_code, dict(d.detail_params)) == (
        "already inside", "already_inside", {})
    short = engine.decide(Scan(ScanKind.QR, "x"), "N1", NOW)
    assert short.detail_code == "not_a_code"
    rows = loaded.execute("SELECT detail, detail_code, detail_params FROM entries "
                          "ORDER BY seq").fetchall()
    assert rows == [("", None, None), ("already inside", "already_inside", None),
                    ("not a ticket code", "not_a_code", None)]
    refunded = venue.tickets[venue.named["refunded"]].code
    d = engine.decide(Scan(ScanKind.QR, refunded), "N1", NOW)
    row = loaded.execute("SELECT detail, detail_code, detail_params FROM entries WHERE id = ?",
                         (d.entry_id,)).fetchone()
    assert row[0] == d.detail and row[1] == d.detail_code == "revoked"
    assert json.loads(row[2]) == dict(d.detail_params) == {"why": "refunded"}
