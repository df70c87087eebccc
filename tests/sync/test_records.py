"""The entry and heartbeat records: what the appliance builds is what the schemas accept, a
request read with ``from_wire`` gives back exactly what was sent, and a bad field is named
with the error code the hub answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import schemas
from sync.ids import uuid7
from sync.records import (
    BadField,
    DeviceReport,
    EntryRecord,
    Heartbeat,
    LaneReport,
    QueueReport,
    StateReport,
    entries_from_wire,
    entries_to_wire,
)
from sync.timeutil import from_iso, to_iso, utcnow


def entry(**over):
    return {"id": str(uuid7()), "seq": 1, "at": to_iso(utcnow()), "lane": "N1",
            "direction": "in", "ticket_id": 1, "session_id": 1, "admitted": True,
            "reason": "OK", "cursor": 0, "kind": "qr", "staff": None, **over}


def test_an_entry_built_by_the_appliance_is_the_wire_field_for_field_in_order():
    wire = entry()
    record = EntryRecord(**wire)
    assert record.to_wire() == wire
    assert list(record.to_wire()) == ["id", "seq", "at", "lane", "direction", "ticket_id",
                                      "session_id", "admitted", "reason", "cursor", "kind",
                                      "staff"]
    assert entries_to_wire([record]) == {"entries": [wire]}
    schemas.check("entries", entries_to_wire([record]))


def test_an_entry_read_from_the_wire_gives_back_what_was_sent():
    short = {k: v for k, v in entry().items() if k not in ("lane", "cursor", "kind", "staff")}
    full = entry(staff="wang.li", kind="manual", ticket_id=None)
    records = entries_from_wire({"entries": [short, full]})
    assert [r.to_wire() for r in records] == [short, full]
    assert records[0].lane is None and records[0].cursor is None


def test_what_the_hub_keeps_of_an_entry():
    wire = {k: v for k, v in entry().items() if k != "cursor"}
    kept = EntryRecord.from_wire(wire).as_stored()
    assert kept["at"] == from_iso(wire["at"]) and kept["at"].tzinfo is not None
    assert kept["cursor"] == 0
    assert {k: v for k, v in kept.items() if k not in ("at", "cursor")} == {
        k: v for k, v in wire.items() if k != "at"}


@pytest.mark.parametrize("body, code, field", [
    ({"entries": [entry(), entry(admitted=1)]}, "bad_entry", "/entries/1/admitted"),
    ({"entries": [entry(at=to_iso(utcnow() + timedelta(days=400)))]}, "bad_entry",
     "/entries/0/at"),
    ({"entries": [entry(kind="telepathy")]}, "bad_entry", "/entries/0/kind"),
    ({"entries": [17]}, "bad_entry", "/entries/0"),
    ({"entries": {}}, "bad_request", "/entries"),
    ({}, "bad_request", "/entries"),
    ([], "bad_request", ""),
])
def test_a_bad_push_names_its_field_with_the_hubs_code(body, code, field):
    with pytest.raises(BadField) as e:
        entries_from_wire(body)
    assert (e.value.code, e.value.field, e.value.invalid.field) == (code, field, field)


def test_one_entry_is_checked_on_its_own_fields():
    with pytest.raises(BadField) as e:
        EntryRecord.from_wire(entry(direction="sideways"))
    assert (e.value.code, e.value.field) == ("bad_entry", "/direction")


def test_the_appliances_report_is_the_wire_it_always_sent():
    state = StateReport(
        software_version="0.1.0",
        devices=(DeviceReport(id="cam-1", kind="qr_camera", state="up", detail=None,
                              at=to_iso(utcnow()), lane=None),),
        lanes=(LaneReport(code="P1", gate="P", name="Pool 1"),
               LaneReport(code="P2", gate=None, name="")),
        cursors={"allowlist": 3, "revocations": 3}, keys=(1,),
        queue=QueueReport(unsent=0, oldest_unsent_at=None, refused=1, last_seq=9))
    wire = state.to_wire()
    assert list(wire) == ["software_version", "devices", "lanes", "cursors", "keys", "queue"]
    assert list(wire["devices"][0]) == ["id", "kind", "state", "detail", "at", "lane"]
    assert wire["lanes"][1] == {"code": "P2", "gate": None, "name": ""}
    assert wire["queue"] == {"unsent": 0, "oldest_unsent_at": None, "refused": 1, "last_seq": 9}
    body = Heartbeat(state, to_iso(utcnow()), (4, 5)).to_wire()
    schemas.check("heartbeat", body)
    assert Heartbeat.from_wire(body).to_wire() == body


@pytest.mark.parametrize("state", [
    {},
    {"devices": [{"id": "d1"}]},
    {"devices": [{"id": "d1", "detail": None, "errors": 3, "last_scan_at": None}]},
    {"queue": {"unsent": 2}, "keys": []},
    {"lanes": [{"code": "N1"}], "cursors": {"allowlist": 7}},
])
def test_a_partial_report_is_kept_exactly_as_sent(state):
    hb = Heartbeat.from_wire({"state": state, "clock": None, "done": [1]})
    assert hb.state.to_wire() == state
    assert hb.done == (1,) and hb.clock_time() is None


def test_a_heartbeat_with_nothing_in_it_reads_as_empty():
    hb = Heartbeat.from_wire({})
    assert (hb.state.to_wire(), hb.clock, hb.done) == ({}, None, ())


@pytest.mark.parametrize("body, field", [
    ({"state": {"devices": [{"kind": "no id"}]}}, "/state/devices/0/id"),
    ({"state": {"queue": 3}}, "/state/queue"),
    ({"state": {}, "clock": "x"}, "/clock"),
    ({"state": {}, "done": [1.0]}, "/done/0"),
    ({"state": {"mood": "fine"}}, "/state/mood"),
])
def test_a_bad_heartbeat_names_its_field(body, field):
    with pytest.raises(BadField) as e:
        Heartbeat.from_wire(body)
    assert (e.value.code, e.value.field) == ("bad_request", field)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)
_device = st.fixed_dictionaries({"id": st.text(min_size=1, max_size=8)}, optional={
    "kind": st.text(max_size=8), "state": st.text(max_size=8),
    "detail": st.none() | st.text(max_size=8), "lane": st.none() | st.text(max_size=8),
    "errors": st.integers(0, 10), "error": st.none() | st.text(max_size=8)})
_state = st.fixed_dictionaries({}, optional={
    "software_version": st.text(max_size=8), "devices": st.lists(_device, max_size=3),
    "lanes": st.lists(st.fixed_dictionaries({"code": st.text(min_size=1, max_size=8)}, optional={
        "gate": st.none() | st.text(max_size=8), "name": st.text(max_size=8)}), max_size=3),
    "cursors": st.fixed_dictionaries({}, optional={"allowlist": st.integers(0, 99),
                                                   "revocations": st.integers(0, 99)}),
    "keys": st.lists(st.integers(1, 99), max_size=3),
    "queue": st.fixed_dictionaries({}, optional={"unsent": st.integers(0, 9),
                                                 "refused": st.integers(0, 9),
                                                 "last_seq": st.integers(0, 9)})})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_state, _json))
def test_any_heartbeat_is_either_refused_with_a_field_or_kept_exactly(state):
    try:
        schemas.check("heartbeat", {"state": state})
    except schemas.Invalid:
        with pytest.raises(BadField):
            Heartbeat.from_wire({"state": state})
        return
    assert Heartbeat.from_wire({"state": state}).state.to_wire() == state
