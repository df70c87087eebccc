import json

import pytest

from edge.allowlist import AllowlistError, apply_changes, import_file
from sync.changes import parse_change


def write_lines(path, objs):
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs))
    return path


def test_import_loads_the_sample_venue(conn, vault, venue, tmp_path):
    path = write_lines(tmp_path / "allowlist.jsonl", venue.changes)
    seen = []
    r = import_file(conn, vault, path, progress=seen.append)
    assert r.applied == len(venue.changes) and r.unchanged == 0
    assert seen[-1] == len(venue.changes)
    in_list = sum(1 for c in venue.changes if c["type"] == "ticket")
    assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (in_list,)
    assert conn.execute("SELECT cursor FROM sync_state WHERE stream = 'allowlist'").fetchone() \
        == (venue.changes[-1]["seq"],)


def test_replaying_a_file_changes_nothing(conn, vault, venue, tmp_path):
    path = write_lines(tmp_path / "allowlist.jsonl", venue.changes)
    import_file(conn, vault, path)
    before = conn.execute("SELECT * FROM tickets ORDER BY id").fetchall()
    r = import_file(conn, vault, path)
    assert (r.applied, r.unchanged) == (0, len(venue.changes))
    assert conn.execute("SELECT * FROM tickets ORDER BY id").fetchall() == before


def test_an_older_version_never_overwrites_a_newer_one(conn, vault):
    new = {"seq": 20, "type": "ticket", "op": "upsert", "id": 1, "number": "T1", "scope": [1],
           "state": "refunded"}
    old = {**new, "seq": 10, "state": "issued"}
    apply_changes(conn, vault, [parse_change(new)])
    apply_changes(conn, vault, [parse_change(old)])
    assert conn.execute("SELECT state, version FROM tickets").fetchone() == ("refunded", 20)


def test_a_bad_line_is_named_and_nothing_is_applied(conn, vault, venue, tmp_path):
    lines = list(venue.changes)
    lines.insert(5, {"seq": 99, "type": "ticket", "op": "upsert", "id": 5, "number": "T5",
                     "scope": [1], "zone_id": "north"})
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(AllowlistError, match=r"bad.jsonl:6: ticket.zone_id: must be an integer"):
        import_file(conn, vault, path)
    assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)


def test_broken_json_and_binary_garbage(conn, vault, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"seq": 1, "type": "zone"\n')
    with pytest.raises(AllowlistError, match=r"broken.jsonl:1: not valid JSON"):
        import_file(conn, vault, path)
    path.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(AllowlistError, match="broken.jsonl"):
        import_file(conn, vault, path)
    with pytest.raises(AllowlistError, match="cannot open"):
        import_file(conn, vault, tmp_path / "missing.jsonl")


def test_holders_are_sealed_and_masked_on_arrival(conn, vault):
    from sync.sample import resident_id

    number = resident_id("11010119900307123")
    apply_changes(conn, vault, [parse_change({"seq": 1, "type": "holder", "op": "upsert",
                                              "id": 7, "name": "张小三", "doc_type": "resident_id",
                                              "doc_number": number})])
    row = conn.execute("SELECT name_sealed, doc_sealed, name_masked, doc_masked, doc_hash "
                       "FROM holders").fetchone()
    assert row[2] == "张*三" and row[3] == number[:4] + "*" * 10 + number[-4:]
    assert number.encode() not in row[1] and "张小三".encode() not in row[0]
    assert vault.open(row[0], "holder:7:name") == "张小三"
    assert vault.open(row[1], "holder:7:doc") == number
    assert row[4] == vault.doc_hash("resident_id", number)
    dump = "\n".join(conn.iterdump())
    assert number not in dump and "张小三" not in dump


def test_a_holder_with_an_invalid_document_is_refused_clearly(conn, vault):
    bad = {"seq": 1, "type": "holder", "op": "upsert", "id": 7, "name": "张三",
           "doc_type": "resident_id", "doc_number": "110101199003071230"}
    with pytest.raises(AllowlistError, match="holder 7") as err:
        apply_changes(conn, vault, [parse_change(bad)])
    assert "110101199003071230" not in str(err.value)


def test_an_rfid_uid_moves_with_its_chip(conn, vault):
    a = {"seq": 1, "type": "ticket", "op": "upsert", "id": 1, "number": "T1", "scope": [1],
         "rfid_uid": "04A1B2C3"}
    b = {"seq": 2, "type": "ticket", "op": "upsert", "id": 2, "number": "T2", "scope": [1],
         "rfid_uid": "04A1B2C3"}
    apply_changes(conn, vault, [parse_change(a), parse_change(b)])
    assert conn.execute("SELECT id, rfid_uid FROM tickets ORDER BY id").fetchall() == \
        [(1, None), (2, "04A1B2C3")]


def test_a_failed_batch_leaves_no_trace(conn, vault):
    good = {"seq": 1, "type": "zone", "op": "upsert", "id": 1, "code": "A", "name": "A"}
    lane = {"seq": 2, "type": "lane", "op": "upsert", "id": 1, "code": "L1", "gate_id": 42}
    with pytest.raises(AllowlistError, match="gate 42 does not exist"):
        apply_changes(conn, vault, [parse_change(good), parse_change(lane)])
    assert conn.execute("SELECT count(*) FROM zones").fetchone() == (0,)
    assert conn.execute("SELECT cursor FROM sync_state WHERE stream='allowlist'").fetchone() \
        == (0,)
