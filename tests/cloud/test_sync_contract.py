"""The sync API believes nothing an appliance says about another venue, and reads no field it
has not checked: every request against its schema, on both databases."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cloud.app import create_app
from cloud.catalog.events import create_event
from cloud.catalog.venues import add_gate, add_lane, add_zone, create_venue
from cloud.core.audit import audit_log
from cloud.core.db import init_db
from cloud.fleet import appliances
from cloud.fleet.keys import activate_key, create_key
from cloud.fleet.tables import entries
from cloud.inventory.sessions import create_session
from cloud.ops import alerts
from cloud.ops import attendance as ops
from cloud.ops.tables import conflicts, entered_tickets, entry_minutes
from cloud.sales.tickets import issue_ticket
from sync.ids import uuid7
from sync.timeutil import to_iso, utcnow

API = "/api/sync/v1"


@pytest.fixture
def hub(hub_url):
    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True})
    engine = app.extensions["db"]
    now = utcnow()
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        a = create_venue(conn, "OSC", "Olympic Sports Centre")
        b = create_venue(conn, "AQC", "Aquatics Centre")
        zone = add_zone(conn, a, "A", "North Stand")
        add_zone(conn, b, "P", "Pool")
        add_gate(conn, a, "N", "North Gate", ["A"])
        add_gate(conn, b, "P", "Pool Gate", ["P"])
        add_lane(conn, a, "N", "N1")
        add_lane(conn, b, "P", "N1")  # the same lane code at both venues
        event = create_event(conn, "GAMES", "The Games")
        start = now + timedelta(minutes=30)
        session_a = create_session(conn, event, a, "Opening", start, start + timedelta(hours=3),
                                   gates_open_at=now - timedelta(hours=1))
        session_b = create_session(conn, event, b, "Heats", start, start + timedelta(hours=3),
                                   gates_open_at=now - timedelta(hours=1))
        tickets_a = [issue_ticket(conn, session_id=session_a, zone_id=zone).id for _ in range(4)]
        ticket_b = issue_ticket(conn, session_id=session_b).id
        regs = {"a": appliances.register(conn, a, "North box"),
                "b": appliances.register(conn, b, "Pool box")}
    client = app.test_client()
    auth = {}
    for name, reg in regs.items():
        credential = client.post(f"{API}/enroll", json={"token": reg.token}).get_json()[
            "credential"]
        auth[name] = {"Authorization": f"Appliance {credential}"}
    yield {"client": client, "engine": engine, "auth": auth, "session_a": session_a,
           "session_b": session_b, "tickets_a": tickets_a, "ticket_b": ticket_b,
           "appliance_b": regs["b"].id, "venue_b": b}
    engine.dispose()


def entry(session, ticket, **over):
    return {"id": str(uuid7()), "seq": 1, "at": to_iso(utcnow()), "lane": "N1",
            "direction": "in", "ticket_id": ticket, "session_id": session, "admitted": True,
            "reason": "OK", "cursor": 10, **over}


def push(hub, box, *batch):
    r = hub["client"].post(f"{API}/entries", json={"entries": list(batch)},
                           headers=hub["auth"][box])
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def counts(hub):
    """Everything a push can move at the hub."""
    with hub["engine"].connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (entries, entry_minutes, entered_tickets, conflicts)}


def test_venue_b_cannot_write_venue_a_attendance(hub):
    """Venue B's appliance credential pushes admissions of venue A's tickets for A's session
    (and of A's tickets under its own session): A's attendance, ops counters and conflicts do
    not move; the entries are refused with their reason and raise an alert."""
    sa_, tickets = hub["session_a"], hub["tickets_a"]
    with hub["engine"].connect() as conn:
        before = ops.attendance(conn, [sa_])["totals"]
    attack = [entry(sa_, tickets[0]), entry(sa_, tickets[1]),
              entry(hub["session_b"], tickets[2]), entry(None, tickets[3]),
              entry(sa_, None, admitted=False, reason="UNKNOWN")]
    answer = push(hub, "b", *attack)
    assert answer["stored"] == [] and answer["conflict"] == []
    assert answer["refused"] == [{"id": e["id"], "reason": "other_venue"} for e in attack]
    assert counts(hub) == {"entries": 0, "entry_minutes": 0, "entered_tickets": 0,
                           "conflicts": 0}
    with hub["engine"].connect() as conn:
        assert ops.attendance(conn, [sa_])["totals"] == before
        (alert,) = alerts.open_alerts(conn)
        audited = conn.execute(sa.select(audit_log.c.after).where(
            audit_log.c.action == "sync.entries_refused")).scalar_one()
    assert (alert["kind"], alert["subject"], alert["value"]) == (
        "entries_refused", f"appliance:{hub['appliance_b']}", 5.0)
    assert alert["venue_id"] == hub["venue_b"]
    assert alert["detail"].startswith("Pool box (Aquatics Centre): 5 entries")
    assert "(5 other_venue)" in alert["detail"]
    assert audited["reasons"] == {"other_venue": 5}
    # A's own appliance still admits the same tickets: not a conflict with the refused ones
    mine = push(hub, "a", entry(sa_, tickets[0]), entry(sa_, tickets[1]))
    assert len(mine["stored"]) == 2 and mine["conflict"] == [] and mine["refused"] == []
    with hub["engine"].connect() as conn:
        assert ops.attendance(conn, [sa_])["totals"]["entered"] == before["entered"] + 2


def test_unknown_tickets_and_sessions_are_refused_and_the_rest_of_the_batch_kept(hub):
    ok = entry(hub["session_b"], hub["ticket_b"])
    # a visitor with venue A's ticket at venue B, refused there: a true record, kept
    visitor = entry(None, hub["tickets_a"][0], admitted=False, reason="WRONG_SESSION")
    no_ticket = entry(hub["session_b"], 10**12)
    no_session = entry(999_999, hub["ticket_b"], admitted=False, reason="EXPIRED")
    answer = push(hub, "b", ok, visitor, no_ticket, no_session)
    assert answer["stored"] == [ok["id"], visitor["id"]]
    assert answer["refused"] == [{"id": no_ticket["id"], "reason": "unknown_ticket"},
                                 {"id": no_session["id"], "reason": "unknown_session"}]
    again = push(hub, "b", no_ticket)  # a resend is refused again, never stored
    assert again["refused"] == [{"id": no_ticket["id"], "reason": "unknown_ticket"}]
    assert counts(hub)["entries"] == 2


def test_the_entries_refused_alert_clears_once_the_window_is_quiet(hub):
    push(hub, "b", entry(hub["session_a"], hub["tickets_a"][0]))
    with hub["engine"].begin() as conn:
        assert [a["kind"] for a in alerts.open_alerts(conn)] == ["entries_refused"]
        later = utcnow() + timedelta(minutes=61)
        result = alerts.evaluate(conn, later, min_interval=timedelta(0))
    assert [c["kind"] for c in result.cleared] == ["entries_refused"]


# -- every field checked ---------------------------------------------------------------------


def _bad_entries():
    e = entry(1, 1)
    long = "x" * (3 * 1024 * 1024)
    return [
        ("seq", 2**64, "/entries/1/seq"),
        ("seq", 10**100, "/entries/1/seq"),
        ("ticket_id", 2**64, "/entries/1/ticket_id"),
        ("session_id", 2**31, "/entries/1/session_id"),
        ("lane", {"code": "N1"}, "/entries/1/lane"),
        ("reason", ["OK"], "/entries/1/reason"),
        ("lane", long[:1024 * 1024], "/entries/1/lane"),
        ("staff", "s" * 65, "/entries/1/staff"),
        ("admitted", "no", "/entries/1/admitted"),
        ("admitted", 1, "/entries/1/admitted"),
        ("seq", True, "/entries/1/seq"),
        ("cursor", False, "/entries/1/cursor"),
        ("seq", 1.5, "/entries/1/seq"),
        ("seq", 1.0, "/entries/1/seq"),
        ("id", "not-a-uuid", "/entries/1/id"),
        ("id", e["id"].upper(), "/entries/1/id"),
        ("id", "{" + e["id"][1:-1] + "}", "/entries/1/id"),
        ("at", "9999-12-31T23:59:59Z", "/entries/1/at"),
        ("at", "1970-01-01T00:00:00Z", "/entries/1/at"),
        ("at", "0001-01-01T00:00:00+14:00", "/entries/1/at"),
        ("at", "9999-12-31T23:59:59-14:00", "/entries/1/at"),
        ("at", "2026-07-01T12:00:00", "/entries/1/at"),
        ("at", 1751371200, "/entries/1/at"),
        ("direction", "up", "/entries/1/direction"),
        ("reason", "ADMITTED", "/entries/1/reason"),
        ("kind", "laser", "/entries/1/kind"),
        ("lane", "N1\x00", "/entries/1/lane"),
        ("colour", "red", "/entries/1/colour"),
    ]


@pytest.mark.parametrize("field, value, pointer", _bad_entries(),
                         # the same names in every process (some values are random uuids)
                         ids=[f"{i}-{f}" for i, (f, _, _) in enumerate(_bad_entries())])
def test_a_bad_entry_field_is_named_and_nothing_is_stored(hub, field, value, pointer):
    good = entry(hub["session_b"], hub["ticket_b"])
    r = hub["client"].post(f"{API}/entries", headers=hub["auth"]["b"],
                           json={"entries": [good, entry(hub["session_b"], hub["ticket_b"],
                                                         **{field: value})]})
    body = r.get_json()
    assert (r.status_code, body["error"], body["field"]) == (400, "bad_entry", pointer)
    assert len(body["message"]) < 200  # the value is never echoed
    assert counts(hub)["entries"] == 0


@pytest.mark.parametrize("raw, field", [
    ("NaN", "/entries/0/seq"),
    ("Infinity", "/entries/0/seq"),
    ("-Infinity", "/entries/0/seq"),
    ('[1, 2]', ""),
    ('"entries"', ""),
    ('null', ""),
    ('{"entries": {"0": 1}}', "/entries"),
    ('{"entries": [], "more": true}', "/more"),
])
def test_non_finite_numbers_and_bodies_that_are_not_the_object_expected(hub, raw, field):
    if "Infinity" in raw or raw == "NaN":  # as Python's json writes them: not JSON, but parsed
        raw = json.dumps({"entries": [entry(None, None, seq=-1)]}).replace('"seq": -1',
                                                                          f'"seq": {raw}')
    r = hub["client"].post(f"{API}/entries", headers=hub["auth"]["b"], data=raw,
                           content_type="application/json")
    assert (r.status_code, r.get_json()["field"]) == (400, field)


def test_a_missing_field_a_batch_over_the_limit_and_bodies_that_are_not_json(hub):
    client, h = hub["client"], hub["auth"]["b"]
    e = entry(hub["session_b"], hub["ticket_b"])
    del e["admitted"]
    r = client.post(f"{API}/entries", headers=h, json={"entries": [e]})
    assert (r.status_code, r.get_json()["field"]) == (400, "/entries/0/admitted")
    r = client.post(f"{API}/entries", headers=h,
                    json={"entries": [entry(None, None) for _ in range(1001)]})
    assert (r.status_code, r.get_json()["error"]) == (413, "batch_too_large")
    for raw in ("not json", "[" * 100_000, '{"entries": [' + "[" * 50_000):
        r = client.post(f"{API}/entries", headers=h, data=raw, content_type="application/json")
        assert (r.status_code, r.get_json()["error"]) == (400, "bad_json")
    r = client.post(f"{API}/entries", headers=h, data=b" " * (5 * 1024 * 1024),
                    content_type="application/json")
    assert r.status_code == 413
    assert counts(hub)["entries"] == 0


def test_kind_and_staff_are_accepted(hub):
    manual = entry(hub["session_b"], hub["ticket_b"], kind="manual", staff="wang.li")
    camera = entry(None, None, admitted=False, reason="UNKNOWN", kind="qr", staff=None)
    assert push(hub, "b", manual, camera)["stored"] == [manual["id"], camera["id"]]


@pytest.mark.parametrize("body, field", [
    ({"state": {"queue": 3}}, "/state/queue"),
    ({"state": {"queue": {"unsent": "7"}}}, "/state/queue/unsent"),
    ({"state": {"queue": {"unsent": 2**64}}}, "/state/queue/unsent"),
    ({"state": {"software_version": 3}}, "/state/software_version"),
    ({"state": {"software_version": "v" * 41}}, "/state/software_version"),
    ({"state": {"devices": [17]}}, "/state/devices/0"),
    ({"state": {"devices": [{"kind": "no id"}]}}, "/state/devices/0/id"),
    ({"state": {"devices": [{"id": "d1", "errors": "many"}]}}, "/state/devices/0/errors"),
    ({"state": {"devices": [{"id": "d1", "at": "9999-01-01T00:00:00Z"}]}},
     "/state/devices/0/at"),
    ({"state": {"cursors": "x"}}, "/state/cursors"),
    ({"state": {"keys": [True]}}, "/state/keys/0"),
    ({"state": {"lanes": [{"code": "N1", "gate": {"code": "N"}}]}}, "/state/lanes/0/gate"),
    ({"state": {"lanes": [{"code": "x" * 33}]}}, "/state/lanes/0/code"),
    ({"state": {"lanes": [{"code": "N1", "name": "n" * 129}]}}, "/state/lanes/0/name"),
    ({"state": {"mood": "fine"}}, "/state/mood"),
    ({"state": []}, "/state"),
    ({"state": {}, "clock": "x"}, "/clock"),
    ({"state": {}, "clock": "1970-01-01T00:00:00Z"}, "/clock"),
    ({"state": {}, "clock": "9999-12-31T23:59:59-14:00"}, "/clock"),
    ({"state": {"devices": [{"id": "d", "at": "0001-01-01T00:00:00+14:00"}]}},
     "/state/devices/0/at"),
    ({"state": {}, "done": ["1"]}, "/done/0"),
    ({"state": {}, "done": [1.0]}, "/done/0"),
    ({"state": {}, "done": [2**63]}, "/done/0"),
    ({"state": {}, "done": list(range(1, 1002))}, "/done"),
    ({"state": {}, "entries": []}, "/entries"),
])
def test_a_bad_heartbeat_field_is_named_and_the_report_is_not_kept(hub, body, field):
    r = hub["client"].post(f"{API}/heartbeat", headers=hub["auth"]["b"], json=body)
    assert (r.status_code, r.get_json()["error"], r.get_json()["field"]) == (
        400, "bad_request", field)
    with hub["engine"].connect() as conn:
        reported = conn.execute(sa.select(appliances.appliances.c.reported).where(
            appliances.appliances.c.id == hub["appliance_b"])).scalar_one()
    assert reported is None


def test_a_full_report_with_lanes_is_kept(hub):
    state = {"software_version": "0.1.0", "keys": [1], "cursors": {"allowlist": 3,
                                                                  "revocations": 3},
             "queue": {"unsent": 0, "oldest_unsent_at": None, "refused": 1, "last_seq": 9},
             "devices": [{"id": "cam-1", "kind": "qr_camera", "state": "up", "detail": None,
                          "at": to_iso(utcnow())}],
             "lanes": [{"code": "P1", "gate": "P", "name": "Pool 1"},
                       {"code": "P2", "gate": None, "name": ""}]}
    r = hub["client"].post(f"{API}/heartbeat", headers=hub["auth"]["b"],
                           json={"state": state, "clock": to_iso(utcnow()), "done": []})
    assert r.status_code == 200
    with hub["engine"].connect() as conn:
        reported = conn.execute(sa.select(appliances.appliances.c.reported).where(
            appliances.appliances.c.id == hub["appliance_b"])).scalar_one()
    assert reported == state


@pytest.mark.parametrize("query, field", [
    ("since=-1", "/since"), ("since=abc", "/since"), ("since=" + "9" * 40, "/since"),
    ("since=" + str(2**63), "/since"), ("limit=0", "/limit"), ("limit=100000", "/limit"),
    ("progress=2", "/progress"), ("full=x", "/full"), ("colour=red", "/colour"),
    ("since=--5", "/since"), ("since=%00", "/since"), ("since=", "/since"),
])
def test_bad_pull_arguments_are_named(hub, query, field):
    for path in ("allowlist", "revocations"):
        r = hub["client"].get(f"{API}/{path}?{query}", headers=hub["auth"]["b"])
        assert (r.status_code, r.get_json()["error"], r.get_json()["field"]) == (
            400, "bad_argument", field), path


def test_a_revoked_appliance_hears_401_whatever_it_sends(hub):
    with hub["engine"].begin() as conn:
        appliances.revoke(conn, hub["appliance_b"])
    for path in ("entries", "heartbeat", "roll"):
        r = hub["client"].post(f"{API}/{path}", headers=hub["auth"]["b"],
                               data="[" * 1000, content_type="application/json")
        assert r.status_code == 401, path
    r = hub["client"].get(f"{API}/allowlist?since=-5", headers=hub["auth"]["b"])
    assert r.status_code == 401


@pytest.mark.parametrize("body, status, code", [
    ({"token": {"t": 1}}, 400, "bad_request"),
    ({"token": "t" * 257}, 400, "bad_request"),
    ({"token": "x", "venue": 2}, 400, "bad_request"),
    ({}, 400, "bad_request"),
    ({"token": "not-a-token"}, 400, "token_malformed"),
    ({"token": "0" * 64}, 400, "weak_secret"),
    ({"token": "0123456789abcdef" * 4}, 400, "weak_secret"),
])
def test_enrollment_refuses_malformed_and_guessable_tokens(hub, body, status, code):
    r = hub["client"].post(f"{API}/enroll", json=body)
    assert (r.status_code, r.get_json()["error"]) == (status, code)
    assert "0" * 64 not in json.dumps(r.get_json())


@pytest.mark.parametrize("credential, code", [
    ("a" * 43, "weak_secret"),
    ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", "weak_secret"),
    ("abc" * 15, "weak_secret"),
    ("0123456789" * 5, "weak_secret"),
    ("short", "bad_credential"),
    ("x" * 129, "bad_credential"),
    ("has spaces and more than forty three characters in it", "bad_credential"),
    ("é" * 50, "bad_credential"),
])
def test_a_chosen_credential_must_be_well_formed_and_unpredictable(hub, credential, code):
    client, h = hub["client"], hub["auth"]["b"]
    r = client.post(f"{API}/roll", headers=h, json={"credential": credential})
    assert (r.status_code, r.get_json()["error"]) == (400, code)
    assert client.get(f"{API}/allowlist", headers=h).status_code == 200  # the old one works
    r = client.post(f"{API}/roll", headers=h, json={"credential": 43})
    assert (r.status_code, r.get_json()["field"]) == (400, "/credential")
