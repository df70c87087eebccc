import pytest

from sync.changes import ChangeError, normalize_uid, parse_change

TICKET = {"seq": 5, "type": "ticket", "op": "upsert", "id": 1001, "number": "T1",
          "scope": [7], "zone_id": 3}


def test_ticket_defaults_are_filled_in():
    c = parse_change(TICKET)
    assert (c.type, c.op, c.seq, c.key) == ("ticket", "upsert", 5, (1001,))
    assert c.data["kind"] == "session" and c.data["state"] == "issued"
    assert c.data["scope"] == (7,) and c.data["realname"] is False


def test_delete_needs_only_the_key():
    c = parse_change({"seq": 9, "type": "ticket", "op": "delete", "id": 1001})
    assert c.data == {"id": 1001}


@pytest.mark.parametrize("change, message", [
    ([], "JSON object"),
    ({**TICKET, "type": "tickets"}, "type: must be one of"),
    ({**TICKET, "op": "merge"}, "op: must be upsert or delete"),
    ({**TICKET, "seq": -1}, "seq: must be between"),
    ({**TICKET, "seq": "5"}, "seq: must be an integer"),
    ({**TICKET, "id": True}, "ticket.id: must be an integer"),
    ({**TICKET, "colour": "red"}, "unknown field 'colour'"),
    ({**TICKET, "scope": []}, "ticket.scope: must be a list of 1 to 32 ids"),
    ({**TICKET, "scope": [7, 8]}, "exactly one session"),
    ({**TICKET, "kind": "venues", "scope": [1]}, "needs a validity window"),
    ({**TICKET, "valid_from": "2026-07-01T10:00:00Z"}, "go together"),
    ({**TICKET, "valid_from": "2026-07-01T10:00:00", "valid_until": "2026-07-01T11:00:00Z"},
     "UTC offset"),
    ({**TICKET, "state": "lost"}, "ticket.state: must be one of"),
    ({**TICKET, "rfid_uid": "XYZ"}, "ticket.rfid_uid"),
    ({"seq": 1, "type": "session", "op": "upsert", "id": 1, "venue_id": 1, "name": "S",
      "starts_at": "2026-07-01T10:00:00Z", "ends_at": "2026-07-01T09:00:00Z"},
     "ends_at: must be after starts_at"),
    ({"seq": 1, "type": "key", "op": "upsert", "key_id": 1, "public_key": "AAAA"},
     "32-byte"),
    ({"seq": 1, "type": "holder", "op": "upsert", "id": 1, "name": "张三",
      "doc_type": "resident_id"}, "holder.doc_number: required"),
])
def test_bad_changes_name_the_field(change, message):
    with pytest.raises(ChangeError, match=message):
        parse_change(change)


@pytest.mark.parametrize("text, uid", [
    ("04a1b2c3", "04A1B2C3"), ("04:A1:B2:C3:D4:E5:F6", "04A1B2C3D4E5F6"),
    ("04 a1 b2 c3", "04A1B2C3"), ("4A1B2C3", ""), ("ZZZZZZZZ", ""), ("", ""), ("00" * 11, ""),
])
def test_normalize_uid(text, uid):
    assert normalize_uid(text) == uid



def test_a_holder_block_may_name_a_document_which_is_checked_and_normalised():
    from sync.sample import resident_id

    number = resident_id("11010119900307123")
    c = parse_change({"type": "block", "op": "upsert", "seq": 5, "kind": "holder",
                      "value": "flag:1", "doc_type": "resident_id",
                      "doc_number": number.lower()})
    assert (c.key, c.data["doc_type"], c.data["doc_number"]) == (
        ("holder", "flag:1"), "resident_id", number)
    old = parse_change({"type": "block", "op": "upsert", "seq": 6, "kind": "holder",
                        "value": "ab" * 32})  # the appliance's own hash, as before
    assert old.data["doc_number"] is None
    base = {"type": "block", "op": "upsert", "seq": 7, "value": "flag:1"}
    for extra, words in [
        ({"kind": "rfid", "doc_type": "resident_id", "doc_number": number},
         "block.doc_number: only a holder block names a document"),
        ({"kind": "holder", "doc_number": number}, "block.doc_number: doc_type and doc_number"),
        ({"kind": "holder", "doc_type": "resident_id"}, "block.doc_number: doc_type and"),
        ({"kind": "holder", "doc_type": "resident_id", "doc_number": number[:-1] + "0"},
         "block.doc_number: bad_check_digit"),
    ]:
        with pytest.raises(ChangeError) as e:
            parse_change({**base, **extra})
        assert str(e.value).startswith(words) and number[:-1] not in str(e.value)
    assert parse_change({"type": "block", "op": "delete", "seq": 8, "kind": "holder",
                         "value": "flag:1"}).data == {"kind": "holder", "value": "flag:1"}
