"""Each rule and each reason of the validation engine, against a real SQLite file."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from drivers.base import Scan as DriverScan
from drivers.base import ScanKind as DriverKind
from edge.allowlist import apply_changes
from edge.engine import Engine, GroupScan, IdDocument, Scan, ScanKind, UnknownLane
from edge.gates.lane import engine_scan
from edge.reasons import Reason
from sync import codes
from sync.changes import normalize_uid, parse_change
from sync.keys import generate_signing_key
from tests.conftest import NOW


def qr(engine, code, lane="N1", at=NOW, document=None, kind=ScanKind.QR):
    return engine.decide(Scan(kind, code, device_id="cam-1", document=document), lane, at)


def code_of(venue, name_or_id):
    tid = venue.named.get(name_or_id, name_or_id)
    return venue.tickets[tid].code


def doc_of(venue, ticket_id):
    name, doc_type, number = venue.holders[venue.tickets[ticket_id].holder_id]
    return IdDocument(doc_type, number, name)


def entries(conn):
    return conn.execute("SELECT reason, admitted, ticket_id, direction, scan_ref FROM entries "
                        "ORDER BY seq").fetchall()


def apply(conn, vault, *changes, seq=10_000):
    parsed = [parse_change({"seq": seq + i, **c}) for i, c in enumerate(changes)]
    apply_changes(conn, vault, parsed)


# -- first scan, repeats, re-entry -------------------------------------------------------


def test_first_scan_admits_and_records(engine, venue, loaded):
    d = qr(engine, venue.tickets[1002].code)
    assert d.reason is Reason.OK and d.open_lane and d.verdict == "admit"
    assert d.ticket.number == venue.tickets[1002].number and d.ticket.zone == "East Stand"
    assert d.ticket.session == "Opening match"
    assert entries(loaded) == [("OK", 1, 1002, "in", venue.tickets[1002].code)]


def test_second_scan_is_already_entered_with_first_entry_time(engine, venue):
    code = venue.tickets[1002].code
    qr(engine, code)
    d = qr(engine, code, lane="N2", at=NOW + timedelta(minutes=5))
    assert d.reason is Reason.ALREADY_ENTERED and not d.open_lane
    assert d.first_entry_at == NOW
    assert d.detail == "already inside"


def test_no_reentry_after_exit_where_the_gate_forbids_it(engine, venue):
    code = venue.tickets[1002].code
    assert qr(engine, code, "N1").reason is Reason.OK
    assert qr(engine, code, "X1", NOW + timedelta(minutes=10)).reason is Reason.OK
    d = qr(engine, code, "N1", NOW + timedelta(minutes=20))
    assert d.reason is Reason.ALREADY_ENTERED
    assert "re-entry" in d.detail


def test_reentry_after_exit_where_the_gate_allows_it(engine, venue):
    code = venue.tickets[1004].code
    assert qr(engine, code, "C1").reason is Reason.OK
    assert qr(engine, code, "X1", NOW + timedelta(minutes=10)).direction == "out"
    assert qr(engine, code, "C1", NOW + timedelta(minutes=20)).reason is Reason.OK


def test_anti_passback_refuses_a_second_entry_without_an_exit(engine, venue):
    code = venue.tickets[1004].code
    assert qr(engine, code, "C1").reason is Reason.OK
    assert qr(engine, code, "C1", NOW + timedelta(minutes=1)).reason is Reason.ALREADY_ENTERED


def test_a_refused_scan_does_not_use_the_ticket(engine, venue):
    code = venue.tickets[1003].code  # zone C: wrong gate at N1
    assert qr(engine, code, "N1").reason is Reason.WRONG_GATE
    assert qr(engine, code, "C1").reason is Reason.OK


# -- time window ---------------------------------------------------------------------------


def test_session_window_margins(engine, venue):
    code = venue.tickets[1004].code
    starts, ends = venue.sessions[1]
    gates_open = starts - timedelta(minutes=60)
    # the gate opens 30 minutes before gates-open and closes 60 minutes after the end
    early = qr(engine, code, "C1", gates_open - timedelta(minutes=31))
    assert early.reason is Reason.NOT_YET_VALID
    late = qr(engine, code, "C1", ends + timedelta(minutes=61))
    assert late.reason is Reason.EXPIRED
    assert qr(engine, code, "C1", gates_open - timedelta(minutes=29)).reason is Reason.OK


def test_ticket_for_a_later_session_is_not_yet_valid(engine, venue):
    d = qr(engine, code_of(venue, "evening"))
    assert d.reason is Reason.NOT_YET_VALID
    assert "Evening final" in d.detail


def test_gate_margins_come_from_the_gate_policy(engine, venue, loaded, vault):
    apply(loaded, vault, {"type": "gate", "op": "upsert", "id": 4, "code": "G4",
                          "name": "Gate 4", "reentry": True, "open_before_min": 0,
                          "close_after_min": 0})
    starts, ends = venue.sessions[1]
    d = qr(engine, venue.tickets[1004].code, "C1", ends + timedelta(minutes=1))
    assert d.reason is Reason.EXPIRED


def test_explicit_validity_window_on_a_ticket(engine, venue):
    staff = code_of(venue, "staff")
    assert qr(engine, staff, "C1", NOW - timedelta(hours=3)).reason is Reason.NOT_YET_VALID
    assert qr(engine, staff, "C1", NOW + timedelta(hours=23)).reason is Reason.EXPIRED


# -- scope: sessions, venues, gates ----------------------------------------------------------


def test_ticket_for_a_session_elsewhere_is_wrong_session(engine, hub_key):
    code = codes.encode(codes.TicketPayload(ticket_id=777, scope=(99,)), hub_key)
    assert qr(engine, code).reason is Reason.WRONG_SESSION


def test_venue_pass_for_another_venue_is_wrong_session(engine, hub_key):
    p = codes.TicketPayload(ticket_id=778, kind=codes.Kind.VENUES, scope=(2, 3),
                            valid_from=NOW - timedelta(hours=1),
                            valid_until=NOW + timedelta(hours=1))
    d = qr(engine, codes.encode(p, hub_key))
    assert d.reason is Reason.WRONG_SESSION and "venue" in d.detail


def test_zone_not_admitted_at_this_gate_is_wrong_gate(engine, venue):
    d = qr(engine, code_of(venue, "wrong_gate"), "N1")
    assert d.reason is Reason.WRONG_GATE
    # it names the gates whose entry lanes admit the zone (G2 lists it; G3 and G4 list none,
    # so admit every zone; the exit gate has no entry lane)
    assert d.detail == ("zone South Stand is not admitted at this gate: go to Gate 2 South, "
                        "Gate 3 ID only, Gate 4 Concourse")


# -- passes ---------------------------------------------------------------------------------


def test_day_pass_across_sessions_with_a_daily_limit(engine, venue):
    code = code_of(venue, "day_pass")
    assert qr(engine, code, "N1").reason is Reason.OK
    assert qr(engine, code, "X1", NOW + timedelta(minutes=30)).reason is Reason.OK
    evening = venue.sessions[2][0]
    d = qr(engine, code, "N1", evening - timedelta(minutes=30))
    assert d.reason is Reason.OK and d.ticket.session == "Evening final"
    assert qr(engine, code, "X1", evening).reason is Reason.OK
    # a third entry the same day passes the session rules but not the daily limit of 2
    d = qr(engine, code, "C1", evening + timedelta(minutes=10))
    assert d.reason is Reason.ALREADY_ENTERED
    assert "daily limit" in d.detail


def test_pass_counts_single_entry_per_session(engine, venue):
    code = code_of(venue, "day_pass")
    assert qr(engine, code, "N1").reason is Reason.OK
    assert qr(engine, code, "N2", NOW + timedelta(minutes=1)).reason is Reason.ALREADY_ENTERED


def test_pass_outside_all_its_sessions(engine, venue):
    code = code_of(venue, "day_pass")
    after_all = venue.sessions[2][1] + timedelta(hours=2)
    assert qr(engine, code, "N1", after_all).reason is Reason.EXPIRED


# -- staff and registered credentials ---------------------------------------------------------


def test_staff_credential_enters_repeatedly_within_its_window(engine, venue):
    staff = code_of(venue, "staff")
    for minutes in (0, 1, 2):
        d = qr(engine, staff, "C1", NOW + timedelta(minutes=minutes))
        assert d.reason is Reason.OK and d.ticket.role == "staff"


def test_registered_credential_may_reenter_after_exit_at_any_gate(engine, hub_key):
    code = codes.encode(codes.TicketPayload(ticket_id=779, scope=(1,), zone=1,
                                            role=codes.Role.REGISTERED), hub_key)
    assert qr(engine, code, "N1").reason is Reason.OK
    assert qr(engine, code, "N1", NOW + timedelta(minutes=1)).reason is Reason.ALREADY_ENTERED
    assert qr(engine, code, "X1", NOW + timedelta(minutes=2)).reason is Reason.OK
    assert qr(engine, code, "N1", NOW + timedelta(minutes=3)).reason is Reason.OK


# -- revoked and blocked ----------------------------------------------------------------------


def test_refunded_ticket_is_revoked(engine, venue):
    d = qr(engine, code_of(venue, "refunded"))
    assert d.reason is Reason.REVOKED and "refunded" in d.detail


def test_void_state_is_revoked(engine, venue, loaded, vault):
    apply(loaded, vault, {"type": "ticket", "op": "upsert", "id": 1002, "number": "T00001002",
                          "scope": [1], "zone_id": 2, "state": "void"})
    assert qr(engine, venue.tickets[1002].code).reason is Reason.REVOKED


def test_reissued_ticket_revokes_the_old_code(engine, venue, loaded, vault, hub_key):
    apply(loaded, vault, {"type": "ticket", "op": "upsert", "id": 1002, "number": "T00001002",
                          "serial": 1, "scope": [1], "zone_id": 2})
    old = qr(engine, venue.tickets[1002].code)
    assert old.reason is Reason.REVOKED and "newer code" in old.detail
    new = codes.encode(codes.TicketPayload(ticket_id=1002, scope=(1,), zone=2, serial=1), hub_key)
    assert qr(engine, new).reason is Reason.OK


def test_revocation_reaches_a_code_the_allowlist_never_had(engine, venue, loaded, vault):
    code = code_of(venue, "unsynced")
    apply(loaded, vault, {"type": "revocation", "op": "upsert", "ticket_id": venue.named["unsynced"],
                          "reason": "refunded"})
    assert qr(engine, code).reason is Reason.REVOKED


def test_blocked_ticket(engine, venue):
    d = qr(engine, code_of(venue, "blocked"))
    assert d.reason is Reason.BLOCKED and not d.open_lane


def test_blocked_rfid_card_and_blocked_holder(engine, venue, loaded, vault):
    apply(loaded, vault, {"type": "block", "op": "upsert", "kind": "rfid",
                          "value": "04A1B2C3D4E5F6", "reason": "reported stolen"})
    d = engine.decide(Scan(ScanKind.RFID, "04a1b2c3d4e5f6"), "N1", NOW)
    assert d.reason is Reason.BLOCKED
    holder_hash = loaded.execute("SELECT doc_hash FROM holders WHERE id = ?",
                                 (venue.tickets[1001].holder_id,)).fetchone()[0]
    apply(loaded, vault, {"type": "block", "op": "upsert", "kind": "holder",
                          "value": holder_hash, "reason": "banned"}, seq=20_000)
    assert qr(engine, venue.tickets[1001].code).reason is Reason.BLOCKED



def test_a_holder_block_naming_the_document_refuses_that_holder_until_deleted(engine, venue,
                                                                               loaded, vault):
    """The hub's entry flag: the block names the document, the appliance keeps only its own
    keyed hash of it, and the block's delete (by the hub's value) lets the holder in again."""
    from edge import facts

    name, doc_type, number = venue.holders[venue.tickets[1001].holder_id]
    apply(loaded, vault, {"type": "block", "op": "upsert", "kind": "holder", "value": "flag:7",
                          "reason": "risk flag 7", "doc_type": doc_type,
                          "doc_number": number.lower()}, seq=20_000)
    assert loaded.execute("SELECT doc_hash FROM blocklist WHERE value = 'flag:7'").fetchone() == (
        vault.doc_hash(doc_type, number),)
    assert number not in str(loaded.execute("SELECT * FROM blocklist").fetchall())
    assert facts.blocked(loaded, "holder", vault.doc_hash(doc_type, number))  # an ID card alone
    assert qr(engine, venue.tickets[1001].code).reason is Reason.BLOCKED
    assert qr(engine, venue.tickets[1002].code).reason is Reason.OK  # another holder
    apply(loaded, vault, {"type": "block", "op": "delete", "kind": "holder", "value": "flag:7"},
          seq=20_001)
    assert not facts.blocked(loaded, "holder", vault.doc_hash(doc_type, number))
    assert qr(engine, venue.tickets[1001].code).reason is Reason.OK

# -- codes: forged, unknown, offline -------------------------------------------------------------


def test_code_signed_by_another_key_with_the_same_key_id_is_forged(engine):
    impostor = generate_signing_key(1)
    code = codes.encode(codes.TicketPayload(ticket_id=1002, scope=(1,), zone=2), impostor)
    d = qr(engine, code)
    assert d.reason is Reason.FORGED and not d.open_lane


def test_tampered_code_is_forged_or_unknown(engine, venue):
    code = venue.tickets[1002].code
    tampered = code[:60] + ("A" if code[60] != "A" else "B") + code[61:]
    assert qr(engine, tampered).reason in (Reason.FORGED, Reason.UNKNOWN)
    assert qr(engine, code).reason is Reason.OK  # the real one is still unused


def test_code_signed_with_an_unknown_key_id_is_unknown(engine):
    other = generate_signing_key(7)
    d = qr(engine, codes.encode(codes.TicketPayload(ticket_id=5, scope=(1,)), other))
    assert d.reason is Reason.UNKNOWN and "key" in d.detail


def test_retired_key_no_longer_vouches_for_codes_the_allowlist_does_not_know(engine, venue,
                                                                             loaded, vault,
                                                                             hub_key):
    apply(loaded, vault, {"type": "key", "op": "upsert", "key_id": 1,
                          "public_key": hub_key.public_key_b64(),
                          "retired_at": "2026-06-30T00:00:00Z"})
    assert qr(engine, code_of(venue, "unsynced")).reason is Reason.UNKNOWN
    # a code the hub listed (by its fingerprint) is still the code the hub issued
    assert qr(engine, venue.tickets[1002].code).reason is Reason.OK


def test_a_code_that_differs_from_the_listed_one_must_carry_a_valid_signature(engine, venue,
                                                                              hub_key):
    # same ticket, re-signed with another seat: the fingerprint differs, the signature is good
    code = codes.encode(codes.TicketPayload(ticket_id=1002, scope=(1,), zone=2, seat=5), hub_key)
    assert code != venue.tickets[1002].code
    assert qr(engine, code).reason is Reason.OK
    forged = codes.encode(codes.TicketPayload(ticket_id=1006, scope=(1,), zone=2),
                          generate_signing_key(1))
    assert qr(engine, forged).reason is Reason.FORGED


def _signed(hub_key, body: bytes) -> str:
    return codes.from_bytes(body + hub_key.private_key.sign(body))


def test_a_signed_code_valid_past_the_year_9999_is_forged_not_a_device_error(engine, loaded,
                                                                             hub_key):
    # ticket 5, session 1, zone 0, a validity window starting 2**40 minutes after 2020
    body = b"\x01\x01\x40\x05\x00\x01\x00" + codes._varint(2**40) + b"\x01"
    d = qr(engine, _signed(hub_key, body))
    assert d.reason is Reason.FORGED and not d.open_lane and d.entry_id
    assert "impossible values" in d.detail
    assert loaded.execute("SELECT reason FROM entries WHERE id = ?",
                          (d.entry_id,)).fetchone() == ("FORGED",)


def test_a_signed_code_with_the_largest_numbers_is_judged_not_a_device_error(engine, hub_key):
    last = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    huge = codes.TicketPayload(ticket_id=2**40 - 1, kind=codes.Kind.VENUES, scope=(2**63 - 1,),
                               zone=2**63 - 1, seat=2**63 - 1, valid_from=last,
                               valid_until=last + timedelta(minutes=59),
                               daily_limit=2**63 - 1)
    d = qr(engine, codes.encode(huge, hub_key))
    assert d.reason is not Reason.DEVICE_ERROR and not d.open_lane


@pytest.mark.parametrize("text", ["", "   ", "hello world", "\x00\x01\x02", "ÄÖÜ票",
                                  "'; DROP TABLE entries; --", "A" * 100_000, "0" * 115])
def test_garbage_is_recorded_as_unknown_or_forged(engine, loaded, text):
    d = qr(engine, text)
    assert d.reason in (Reason.UNKNOWN, Reason.FORGED) and not d.open_lane
    (ref,) = loaded.execute("SELECT scan_ref FROM entries WHERE id = ?", (d.entry_id,)).fetchone()
    assert len(ref) < 300


def test_signed_code_sold_after_the_last_sync_is_admitted_on_its_signature(engine, venue, loaded):
    d = qr(engine, code_of(venue, "unsynced"))
    assert d.reason is Reason.OK and d.offline_code
    assert loaded.execute("SELECT offline_code FROM entries WHERE id = ?",
                          (d.entry_id,)).fetchone() == (1,)
    assert qr(engine, code_of(venue, "unsynced"), "N2").reason is Reason.ALREADY_ENTERED


def allow_manual_entry(conn, vault, gate_id=1, code="G1", zones=(1, 2), allowed=True):
    apply(conn, vault, {"type": "gate", "op": "upsert", "id": gate_id, "code": code,
                        "name": f"Gate {code}", "zones": list(zones), "manual_entry": allowed})


@pytest.mark.parametrize("kind", [ScanKind.QR, ScanKind.RFID, ScanKind.ID_CARD,
                                  ScanKind.OVERRIDE])
@pytest.mark.parametrize("manual_entry", [False, True])
def test_a_ticket_number_from_any_reader_is_refused(engine, venue, loaded, vault, kind,
                                                    manual_entry):
    """Every reader (lane camera, barcode and wedge scanners, RFID, a handheld's camera) sends
    QR, RFID or ID-card scans: a ticket number among them proves nothing, even at a gate that
    admits typed numbers and even when staff are named."""
    allow_manual_entry(loaded, vault, allowed=manual_entry)
    number = venue.tickets[1002].number
    for text in (number, f" {number} ", number.lower()):
        d = engine.decide(Scan(kind, text, device_id="cam-1", staff="alice",
                               document=IdDocument("resident_id", text)), "N1", NOW)
        assert d.reason in (Reason.UNKNOWN, Reason.FORGED) and not d.open_lane, (kind, text)
        assert d.ticket is None and not d.by_number
    assert loaded.execute("SELECT count(*) FROM entries WHERE admitted = 1").fetchone() == (0,)
    # the ticket itself is unused: its code admits
    assert qr(engine, venue.tickets[1002].code).reason is Reason.OK


@pytest.mark.parametrize("reader", list(DriverKind))
def test_a_ticket_number_from_every_drivers_reader_is_refused_at_the_lane(engine, venue, loaded,
                                                                          vault, reader):
    """What the gate runtime hands the engine for each driver's scan (lane camera and serial
    scanner: qr; serial and wedge barcode scanners: barcode; RFID and OSDP readers; the
    ID-card reader), carrying a valid ticket number, at a gate that admits typed numbers."""
    allow_manual_entry(loaded, vault)
    number = venue.tickets[1002].number
    d = engine.decide(engine_scan(DriverScan(reader, number, "N1-DEV")), "N1", NOW)
    assert d.reason is Reason.UNKNOWN and not d.open_lane and d.ticket is None


def test_a_typed_ticket_number_admits_only_from_named_staff_where_the_gate_allows_it(
        engine, venue, loaded, vault):
    number = venue.tickets[1002].number
    d = engine.decide(Scan(ScanKind.MANUAL, number, "web:alice", staff="alice"), "N1", NOW)
    assert d.reason is Reason.UNKNOWN and not d.open_lane
    assert d.detail == "ticket numbers are not accepted at this gate"
    allow_manual_entry(loaded, vault)
    d = engine.decide(Scan(ScanKind.MANUAL, number, "web:alice"), "N1", NOW)
    assert d.reason is Reason.UNKNOWN
    assert d.detail == "a ticket number is accepted only from signed-in staff"
    assert engine.decide(Scan(ScanKind.MANUAL, number, staff="  "), "N1", NOW).reason \
        is Reason.UNKNOWN
    # another gate's policy does not carry over
    d = engine.decide(Scan(ScanKind.MANUAL, venue.tickets[1006].number, staff="alice"), "C1",
                      NOW)
    assert d.detail == "ticket numbers are not accepted at this gate"
    d = engine.decide(Scan(ScanKind.MANUAL, f" {number} ", "web:alice", staff="alice"), "N1",
                      NOW)
    assert d.reason is Reason.OK and d.ticket.id == 1002 and d.open_lane
    assert d.by_number and d.staff == "alice"
    row = loaded.execute("SELECT scan_kind, staff, admitted FROM entries WHERE id = ?",
                         (d.entry_id,)).fetchone()
    assert row == ("manual", "alice", 1)
    # the rules still apply to a typed number: single entry
    d = engine.decide(Scan(ScanKind.MANUAL, number, staff="bob"), "N2", NOW)
    assert d.reason is Reason.ALREADY_ENTERED and not d.by_number
    # an unknown number is unknown; a code typed in full is judged as a code
    d = engine.decide(Scan(ScanKind.MANUAL, "T99999999", staff="alice"), "N1", NOW)
    assert d.detail == "neither a ticket code nor a known ticket number"
    d = engine.decide(Scan(ScanKind.MANUAL, code_of(venue, "rfid"), staff="alice"), "N1",
                      NOW)
    assert d.reason is Reason.OK and not d.by_number


def test_typed_numbers_of_the_hub_format_are_read_forgivingly_and_checked(engine, venue,
                                                                          loaded, vault):
    from sync import numbers
    body = "7KQ2M9XAPC"
    number = body + numbers.check_symbol(body)
    listed = next(c for c in venue.changes if c["type"] == "ticket" and c["id"] == 1002)
    apply(loaded, vault, {**{k: v for k, v in listed.items() if k != "seq"}, "number": number})
    allow_manual_entry(loaded, vault)
    typo = "8" + number[1:]
    d = engine.decide(Scan(ScanKind.MANUAL, typo, staff="alice"), "N1", NOW)
    assert d.detail == "ticket number mistyped: its check character does not match"
    typed = f"{number[:4].lower()}-{number[4:8]} {number[8:]}".replace("0", "o")
    d = engine.decide(Scan(ScanKind.MANUAL, typed, staff="alice"), "N1", NOW)
    assert d.reason is Reason.OK and d.ticket.id == 1002 and d.by_number


# -- RFID ------------------------------------------------------------------------------------


@pytest.mark.parametrize("uid", ["04A1B2C3D4E5F6", "04:a1:b2:c3:d4:e5:f6", " 04 A1 B2 C3 D4 E5 F6 "])
def test_rfid_uid_lookup(engine, uid):
    d = engine.decide(Scan(ScanKind.RFID, uid), "N1", NOW)
    assert d.reason is Reason.OK and d.ticket.id == 900003


def test_unknown_or_malformed_rfid(engine):
    assert engine.decide(Scan(ScanKind.RFID, "DEADBEEF"), "N1", NOW).reason is Reason.UNKNOWN
    assert engine.decide(Scan(ScanKind.RFID, "not hex"), "N1", NOW).reason is Reason.UNKNOWN


# -- real-name modes ----------------------------------------------------------------------------


def test_ticket_only_gate_needs_no_id(engine, venue):
    assert venue.tickets[1001].holder_id  # a real-name ticket
    assert qr(engine, venue.tickets[1001].code, "N1").reason is Reason.OK


def test_ticket_and_id_gate(engine, venue):
    code = venue.tickets[1003].code  # real-name, zone C, gate G2 (ticket + ID)
    assert qr(engine, code, "S1").reason is Reason.REALNAME_REQUIRED
    someone_else = doc_of(venue, 1001)
    assert qr(engine, code, "S1", document=someone_else).reason is Reason.REALNAME_MISMATCH
    own = doc_of(venue, 1003)
    spaced = replace(own, number=f"{own.number[:6]} {own.number[6:14]} {own.number[14:].lower()}")
    d = qr(engine, code, "S1", document=spaced)
    assert d.reason is Reason.OK
    assert d.holder_masked.document.startswith(own.number[:4])
    assert "*" in d.holder_masked.name and d.holder_masked.name != own.name


def test_ticket_and_id_gate_lets_tickets_without_real_name_through(engine, venue):
    assert qr(engine, venue.tickets[1004].code, "S1").reason is Reason.OK


def test_id_card_alone_finds_the_holders_ticket(engine, venue, loaded):
    doc = doc_of(venue, 1003)
    d = engine.decide(Scan(ScanKind.ID_CARD, document=doc), "ID1", NOW)
    assert d.reason is Reason.OK and d.ticket.id == 1003
    again = engine.decide(Scan(ScanKind.ID_CARD, document=doc), "ID1", NOW + timedelta(minutes=1))
    assert again.reason is Reason.ALREADY_ENTERED
    refs = [r[0] for r in loaded.execute("SELECT scan_ref FROM entries")]
    assert all(r.startswith("doc:") and doc.number not in r for r in refs)


def test_id_card_alone_with_no_ticket_or_at_the_wrong_gate(engine, venue):
    stranger = IdDocument("resident_id", sample_id("11010119800101123"))
    assert engine.decide(Scan(ScanKind.ID_CARD, document=stranger), "ID1",
                         NOW).reason is Reason.UNKNOWN
    holder = doc_of(venue, 1003)
    d = engine.decide(Scan(ScanKind.ID_CARD, document=holder), "N1", NOW)
    assert d.reason is Reason.UNKNOWN and "not accepted at this gate" in d.detail
    bad = IdDocument("resident_id", "110101198001011230")
    assert engine.decide(Scan(ScanKind.ID_CARD, document=bad), "ID1",
                         NOW).reason is Reason.UNKNOWN


def test_id_card_alone_explains_the_best_refusal(engine, venue):
    doc = doc_of(venue, 1003)
    assert engine.decide(Scan(ScanKind.ID_CARD, document=doc), "ID1", NOW).reason is Reason.OK
    d = engine.decide(Scan(ScanKind.ID_CARD, document=doc), "ID1", NOW + timedelta(minutes=1))
    assert d.reason is Reason.ALREADY_ENTERED and d.first_entry_at == NOW


def sample_id(body17):
    from sync.sample import resident_id

    return resident_id(body17)


# -- faults ---------------------------------------------------------------------------------------


def test_a_scan_on_a_lane_that_does_not_exist_is_an_error_not_an_entry(engine, venue, loaded):
    before = entries(loaded)
    with pytest.raises(UnknownLane, match="no such lane: NOPE") as raised:
        qr(engine, venue.tickets[1002].code, lane="NOPE")
    assert raised.value.code == "unknown_lane" and raised.value.lane == "NOPE"
    loaded.execute("UPDATE lanes SET enabled = 0 WHERE code = 'C1'")
    with pytest.raises(UnknownLane, match="lane C1 is disabled") as raised:
        qr(engine, venue.tickets[1002].code, lane="C1")
    assert raised.value.code == "lane_disabled"
    with pytest.raises(UnknownLane):
        engine.check(Scan(ScanKind.QR, venue.tickets[1002].code), "NOPE")
    (result,) = engine.decide_all([GroupScan(Scan(ScanKind.QR, venue.tickets[1002].code),
                                             "NOPE")])
    assert isinstance(result, UnknownLane)
    assert entries(loaded) == before


def test_full_database_keeps_the_lane_shut_and_says_so(engine, venue, loaded):
    (pages,) = loaded.execute("PRAGMA page_count").fetchone()
    loaded.execute(f"PRAGMA max_page_count = {pages}")
    results = [qr(engine, venue.tickets[1000 + i].code, "C1") for i in range(1, 40)]
    failed = [d for d in results if d.reason is Reason.DEVICE_ERROR]
    assert failed, "filling the database should have failed a scan"
    assert all(not d.open_lane and d.entry_id is None and "database" in d.detail for d in failed)
    recorded = {r[0] for r in loaded.execute("SELECT id FROM entries")}
    assert all(d.entry_id in recorded for d in results if d.entry_id)


def test_every_scan_is_recorded(engine, venue, loaded):
    scans = [venue.tickets[1002].code, venue.tickets[1002].code, "junk", code_of(venue, "refunded")]
    decisions = [qr(engine, s) for s in scans]
    ids = [r[0] for r in loaded.execute("SELECT id FROM entries ORDER BY seq")]
    assert ids == [d.entry_id for d in decisions]
    assert len(set(ids)) == len(ids)


def test_engine_reads_configuration_changes_made_by_another_process(engine, venue, db_path, vault):
    from edge import db as db_mod

    other = db_mod.connect(db_path)
    apply(other, vault, {"type": "gate", "op": "upsert", "id": 1, "code": "G1", "name": "Gate 1",
                         "zones": [3]})
    assert qr(engine, venue.tickets[1002].code, "N1").reason is Reason.WRONG_GATE
    other.close()


def test_decide_uses_a_fresh_engine_per_connection(loaded, vault, venue):
    assert Engine(loaded, vault).decide(Scan(ScanKind.QR, venue.tickets[1002].code), "N1",
                                        NOW).reason is Reason.OK


# -- property: nothing short of a code admits unless staff typed it --------------------------


def _short_texts(venue):
    numbers_ = [t.number for t in venue.tickets.values()]
    near = st.sampled_from(numbers_).flatmap(lambda n: st.sampled_from(
        [n, n.lower(), f" {n}\n", n + "\x00", n[:-1], f"{n[:3]}-{n[3:]}"]))
    rfid = st.just("04A1B2C3D4E5F6")
    return st.one_of(near, rfid, st.text(max_size=codes.MIN_CHARS - 1),
                     st.text(alphabet=codes.ALPHABET, max_size=codes.MIN_CHARS - 1))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_text_under_the_code_length_admits_unless_typed_by_staff(engine, venue, loaded,
                                                                     vault, data):
    """Whatever a reader sends that is shorter than the shortest signed code (a ticket number,
    one mangled, any text at all) never admits: only a manual scan can admit on such text.
    The gate here admits typed numbers and every scan names staff, so nothing but the kind
    stands between the text and an admission."""
    allow_manual_entry(loaded, vault)
    text = data.draw(_short_texts(venue), label="text")
    assume(len(text.strip()) < codes.MIN_CHARS)
    kind = data.draw(st.sampled_from([k for k in ScanKind if k is not ScanKind.MANUAL]),
                     label="kind")
    if kind is ScanKind.RFID:
        assume(normalize_uid(text) != "04A1B2C3D4E5F6")  # the one card listed for a ticket
    lane = data.draw(st.sampled_from(["N1", "N2", "C1", "X1"]), label="lane")
    staff = data.draw(st.one_of(st.none(), st.text(max_size=70)), label="staff")
    d = engine.check(Scan(kind, text, "dev", staff=staff,
                          document=IdDocument("resident_id", text)), lane, NOW)
    assert d.reason is not Reason.OK and not d.open_lane
