import json

import pytest

from edge.allowlist import AllowlistError, apply_changes, import_file
from sync import allowlist_file
from sync.changes import parse_change
from sync.keys import generate_signing_key
from sync.timeutil import utcnow
from tests.conftest import NOW

OSC = {"id": 1, "code": "OSC"}


def trust(conn, vault, key, seq=1, retired_at=None):
    """The hub key as the sync brings it (an enrollment answer or an allowlist page)."""
    apply_changes(conn, vault, [parse_change({
        "seq": seq, "type": "key", "op": "upsert", "key_id": key.key_id,
        "public_key": key.public_key_b64(), "retired_at": retired_at})])


def write_signed(path, objs, key, venue=OSC):
    path.write_bytes(allowlist_file.sign(objs, key, venue, NOW))
    return path


@pytest.fixture
def signed(conn, vault, hub_key, tmp_path):
    """Write a file of changes signed by the hub key this appliance holds."""
    trust(conn, vault, hub_key)
    return lambda objs, name="allowlist.jsonl": write_signed(tmp_path / name, objs, hub_key)


def test_import_loads_the_sample_venue(conn, vault, venue, signed):
    path = signed(venue.changes)
    seen = []
    r = import_file(conn, vault, path, progress=seen.append)
    without_key = len(venue.changes) - 1  # the key record is the sync's, never the file's
    assert r.applied == without_key and r.unchanged == 0 and r.signed_by == 1
    assert seen[-1] == without_key
    in_list = sum(1 for c in venue.changes if c["type"] == "ticket")
    assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (in_list,)
    assert conn.execute("SELECT cursor FROM sync_state WHERE stream = 'allowlist'").fetchone() \
        == (venue.changes[-1]["seq"],)


def test_replaying_a_file_changes_nothing(conn, vault, venue, signed):
    path = signed(venue.changes)
    import_file(conn, vault, path)
    before = conn.execute("SELECT * FROM tickets ORDER BY id").fetchall()
    r = import_file(conn, vault, path)
    assert (r.applied, r.unchanged) == (0, len(venue.changes) - 1)
    assert conn.execute("SELECT * FROM tickets ORDER BY id").fetchall() == before


def test_an_older_version_never_overwrites_a_newer_one(conn, vault):
    new = {"seq": 20, "type": "ticket", "op": "upsert", "id": 1, "number": "T1", "scope": [1],
           "state": "refunded"}
    old = {**new, "seq": 10, "state": "issued"}
    apply_changes(conn, vault, [parse_change(new)])
    apply_changes(conn, vault, [parse_change(old)])
    assert conn.execute("SELECT state, version FROM tickets").fetchone() == ("refunded", 20)


def test_a_bad_line_is_named_and_nothing_is_applied(conn, vault, venue, signed):
    lines = [c for c in venue.changes if c["type"] != "key"]
    lines.insert(5, {"seq": 99, "type": "ticket", "op": "upsert", "id": 5, "number": "T5",
                     "scope": [1], "zone_id": "north"})
    path = signed(lines, "bad.jsonl")
    # line 1 is the header: the sixth change is on line 7
    with pytest.raises(AllowlistError, match=r"bad.jsonl:7: ticket.zone_id: must be an integer"):
        import_file(conn, vault, path)
    assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)


def test_broken_json_and_binary_garbage(conn, vault, tmp_path, hub_key):
    trust(conn, vault, hub_key)
    path = tmp_path / "broken.jsonl"
    data = allowlist_file.sign([{"seq": 1, "type": "zone", "op": "upsert", "id": 1,
                                 "code": "A", "name": "A"}], hub_key, OSC, NOW)
    header = data.split(b"\n")[0]
    body = header + b"\n" + b'{"seq": 1, "type": "zone"\n'
    path.write_bytes(_resigned(body, hub_key))
    with pytest.raises(AllowlistError, match=r"broken.jsonl:2: not valid JSON"):
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


def _resigned(body: bytes, key) -> bytes:
    """``body`` (header and lines) with a valid signature by ``key``: what only the hub can
    make, for testing what the reader checks after the signature."""
    import base64
    import hashlib

    digest = hashlib.sha256(body).digest()
    signature = key.private_key.sign(allowlist_file.CONTEXT + digest)
    return body + json.dumps({"key_id": key.key_id, "sha256": digest.hex(),
                              "signature": base64.b64encode(signature).decode()}).encode() + b"\n"


# -- only the hub's signature makes a file importable --------------------------------------


ZONE = {"seq": 5, "type": "zone", "op": "upsert", "id": 7, "code": "F", "name": "Family Zone"}


def zones(conn) -> int:
    return conn.execute("SELECT count(*) FROM zones").fetchone()[0]


def test_an_unsigned_file_is_refused(conn, vault, hub_key, tmp_path):
    trust(conn, vault, hub_key)
    path = tmp_path / "plain.jsonl"
    path.write_text(json.dumps(ZONE) + "\n")
    with pytest.raises(AllowlistError, match="plain.jsonl: not signed by the hub: this is a "
                       "plain list of changes"):
        import_file(conn, vault, path)
    signed = allowlist_file.sign([ZONE], hub_key, OSC, NOW)
    path.write_bytes(signed[:signed.rstrip(b"\n").rfind(b"\n") + 1])  # the signature cut off
    with pytest.raises(AllowlistError, match="not signed by the hub"):
        import_file(conn, vault, path)
    assert zones(conn) == 0


def test_a_file_signed_by_another_key_under_the_trusted_id_is_refused(conn, vault, hub_key,
                                                                       tmp_path):
    trust(conn, vault, hub_key)
    path = write_signed(tmp_path / "a.jsonl", [ZONE], generate_signing_key(hub_key.key_id))
    with pytest.raises(AllowlistError, match="signature does not match hub key 1"):
        import_file(conn, vault, path)
    assert zones(conn) == 0


def test_a_file_signed_with_a_key_the_appliance_does_not_hold_is_refused(conn, vault, hub_key,
                                                                          tmp_path):
    trust(conn, vault, hub_key)
    path = write_signed(tmp_path / "a.jsonl", [ZONE], generate_signing_key(9))
    with pytest.raises(AllowlistError, match="hub key 9, which this appliance does not trust"):
        import_file(conn, vault, path)
    untrusted = tmp_path / "b.jsonl"
    write_signed(untrusted, [ZONE], hub_key)
    conn.execute("DELETE FROM hub_keys")  # an appliance that holds no key trusts no file
    with pytest.raises(AllowlistError, match="hub key 1, which this appliance does not trust"):
        import_file(conn, vault, untrusted)
    assert zones(conn) == 0


def test_a_file_signed_with_a_retired_key_is_refused(conn, vault, hub_key, tmp_path):
    trust(conn, vault, hub_key, retired_at="2026-01-01T00:00:00Z")
    path = write_signed(tmp_path / "a.jsonl", [ZONE], hub_key)
    with pytest.raises(AllowlistError, match="does not trust"):
        import_file(conn, vault, path)


@pytest.mark.parametrize("tamper", [
    lambda d: d.replace(b'"Family Zone"', b'"Family Zonf"'),
    lambda d: d.replace(b'"count": 1', b'"count": 2'),
    lambda d: d.split(b"\n", 1)[0] + b"\n" + d.split(b"\n", 2)[2],  # a line removed
    lambda d: d.replace(b"\n", b'\n{"seq": 6, "type": "zone", "op": "delete", "id": 1}\n', 1),
])
def test_a_file_changed_after_signing_is_refused(conn, vault, hub_key, tmp_path, tamper):
    trust(conn, vault, hub_key)
    path = tmp_path / "a.jsonl"
    data = allowlist_file.sign([ZONE], hub_key, OSC, NOW)
    path.write_bytes(tamper(data))
    assert path.read_bytes() != data
    with pytest.raises(AllowlistError, match="changed"):
        import_file(conn, vault, path)
    assert zones(conn) == 0


def test_a_file_for_another_venue_is_refused(conn, vault, hub_key, venue, signed, tmp_path):
    import_file(conn, vault, signed(venue.changes))  # this appliance serves OSC (id 1)
    other = write_signed(tmp_path / "other.jsonl", [ZONE], hub_key,
                         venue={"id": 2, "code": "WKS"})
    with pytest.raises(AllowlistError, match="for venue 'WKS' \\(id 2\\), not for this "
                       "appliance's venue \\(id 1\\)"):
        import_file(conn, vault, other)
    assert conn.execute("SELECT count(*) FROM zones WHERE id = 7").fetchone() == (0,)


def test_an_enrolled_appliance_without_a_venue_yet_knows_its_venue_from_enrollment(
        conn, vault, hub_key, tmp_path):
    trust(conn, vault, hub_key)
    conn.execute("INSERT INTO appliance_state (key, value) VALUES ('hub_venue_id', '2')")
    with pytest.raises(AllowlistError, match="not for this appliance's venue \\(id 2\\)"):
        import_file(conn, vault, write_signed(tmp_path / "a.jsonl", [ZONE], hub_key))


@pytest.mark.parametrize("record", [
    {"seq": 6, "type": "key", "op": "upsert", "key_id": 2},
    {"seq": 6, "type": "key", "op": "upsert", "key_id": 1},
    {"seq": 6, "type": "key", "op": "delete", "key_id": 1},
])
def test_a_file_can_never_add_change_or_remove_a_signing_key(conn, vault, hub_key, tmp_path,
                                                              record):
    trust(conn, vault, hub_key)
    record = {**record, "public_key": generate_signing_key(2).public_key_b64()}
    if record["op"] == "delete":
        del record["public_key"]
    before = conn.execute("SELECT * FROM hub_keys").fetchall()
    # even signed by the hub's own key, a key record is refused, and nothing else applies
    header = json.dumps({"format": "wicket-allowlist", "version": 1, "venue": OSC,
                         "exported_at": "2026-07-01T00:00:00Z", "count": 2, "cursor": 6})
    body = (header + "\n" + json.dumps(ZONE) + "\n" + json.dumps(record) + "\n").encode()
    path = tmp_path / "keys.jsonl"
    path.write_bytes(_resigned(body, hub_key))
    with pytest.raises(AllowlistError, match="keys.jsonl:3: a hub key record: keys reach the "
                       "appliance only by sync"):
        import_file(conn, vault, path)
    assert conn.execute("SELECT * FROM hub_keys").fetchall() == before
    assert zones(conn) == 0


def test_the_signed_file_leaves_out_key_records_and_says_what_it_holds(venue, hub_key):
    data = allowlist_file.sign(venue.changes, hub_key, OSC, utcnow())
    lines = data.decode().splitlines()
    header, trailer = json.loads(lines[0]), json.loads(lines[-1])
    assert header["format"] == "wicket-allowlist" and header["venue"] == OSC
    assert header["count"] == len(lines) - 2 == len(venue.changes) - 1
    assert header["cursor"] == venue.changes[-1]["seq"]
    assert all(json.loads(line)["type"] != "key" for line in lines[1:-1])
    assert trailer["key_id"] == 1 and len(trailer["sha256"]) == 64
