"""Holders' personal data sealed at rest on the hub: the data key file, sealing bound to the
record, the keyed document hash, and holders sealed in their table and in the change log but
served in clear to an authenticated appliance."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.events import create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.changes import change_log, changes_since, open_changes
from cloud.core.db import init_db, make_engine
from cloud.core.seal import (
    Keyring,
    SealError,
    add_key,
    context,
    create_key_file,
    key_id_of,
    load_keyring,
    read_key_file,
)
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory.sessions import create_session
from cloud.sales.holders import document_match, holder
from cloud.sales.tables import holders
from cloud.sales.tickets import issue_ticket
from sync.sample import resident_id

START = datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
NUMBER = resident_id("11010119900307123")
NAME = "张小三"


def test_a_key_file_is_made_owner_only_and_refused_when_others_may_read_it(tmp_path):
    path = str(tmp_path / "data.key")
    assert create_key_file(path) and not create_key_file(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert len(read_key_file(path)) == 1
    for mode in (0o640, 0o604, 0o620):
        os.chmod(path, mode)
        with pytest.raises(SealError, match="chmod 600") as e:
            load_keyring(path)
        assert e.value.code == "data_key_unusable"
    with pytest.raises(SealError, match="no such file"):
        load_keyring(str(tmp_path / "missing.key"))
    bad = tmp_path / "bad.key"
    bad.write_text("abc not-a-key\n")
    bad.chmod(0o600)
    with pytest.raises(SealError, match="line 1"):
        load_keyring(str(bad))


def test_a_sealed_value_opens_only_for_its_record_and_names_its_key():
    ring = Keyring([("k1", os.urandom(32))])
    sealed = ring.seal(NAME, context("holders", 5, "name"))
    assert NAME not in sealed and key_id_of(sealed) == "k1"
    assert ring.open(sealed, "holders:5:name") == NAME
    for elsewhere in ("holders:6:name", "holders:5:doc_number", "change_log:5:name"):
        with pytest.raises(SealError, match="another record"):
            ring.open(sealed, elsewhere)
    other = Keyring([("k2", os.urandom(32))])
    with pytest.raises(SealError, match="key k1 is not in the data key file"):
        other.open(sealed, "holders:5:name")
    head, blob = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(blob))
    raw[-1] ^= 1  # one bit of the tag: editing the text could touch only base64's spare bits
    tampered = f"{head}:{base64.urlsafe_b64encode(bytes(raw)).decode('ascii')}"
    with pytest.raises(SealError):
        ring.open(tampered, "holders:5:name")
    assert ring.seal(NAME, "holders:5:name") != sealed  # a fresh nonce every time


def test_the_document_hash_is_keyed_and_a_rotating_ring_finds_both():
    raw_old, raw_new = os.urandom(32), os.urandom(32)
    old, rotating = Keyring([("a", raw_old)]), Keyring([("b", raw_new), ("a", raw_old)])
    assert old.doc_hash(NUMBER) != Keyring([("a", os.urandom(32))]).doc_hash(NUMBER)
    assert rotating.doc_hash(NUMBER) != old.doc_hash(NUMBER)
    assert old.doc_hash(NUMBER) in rotating.doc_hashes(NUMBER)
    assert len(old.doc_hash(NUMBER)) == 64 and NUMBER not in old.doc_hash(NUMBER)


def test_a_new_key_goes_first_and_the_old_ones_still_open(tmp_path):
    path = str(tmp_path / "data.key")
    create_key_file(path)
    ring = load_keyring(path)
    sealed = ring.seal(NAME, "holders:1:name")
    new_id = add_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    rotated = load_keyring(path)
    assert rotated.current_id == new_id and rotated.ids[1] == ring.current_id
    assert rotated.open(sealed, "holders:1:name") == NAME
    assert key_id_of(rotated.reseal(sealed, "holders:1:name")) == new_id


@pytest.fixture
def hub(hub_url):
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "North Stand")
        event = create_event(conn, "GAMES", "The Games")
        session = create_session(conn, event, venue, "Opening", START,
                                 START + timedelta(hours=3), START - timedelta(hours=1))
    yield engine, venue, session
    engine.dispose()


def sell_named(engine, session, name=NAME, number=NUMBER):
    with engine.begin() as conn:
        return issue_ticket(conn, session_id=session, zone_id=0,
                            holder=(name, "resident_id", number))


def test_holders_are_sealed_in_their_table_and_in_the_change_log(hub):
    engine, venue, session = hub
    t = sell_named(engine, session)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(holders)).all()
        logged = [r.record for r in conn.execute(sa.select(change_log.c.record).where(
            change_log.c.kind == "holder"))]
        dumped = repr(rows) + repr(logged)
        assert NAME not in dumped and NUMBER not in dumped
        assert len(rows) == 1 and all(key_id_of(v) for v in
                                      (rows[0].sealed_name, rows[0].sealed_doc_number))
        assert key_id_of(logged[0]["name"]) and key_id_of(logged[0]["doc_number"])
        # opened for the appliance (as served), the record is what it always was
        served = [c for c in open_changes(conn, changes_since(conn, venue, 0))
                  if c["type"] == "holder"]
        assert served == [{**logged[0], "name": NAME, "doc_number": NUMBER}]
        h = holder(conn, rows[0].id)
        assert (h.name, h.doc_type, h.doc_number) == (NAME, "resident_id", NUMBER)
        ticket_holder = conn.execute(sa.text("SELECT holder_id FROM tickets WHERE id = :i"),
                                     {"i": t.id}).scalar_one()
        assert ticket_holder == h.id


def test_a_holder_row_moved_to_another_row_does_not_open(hub):
    engine, venue, session = hub
    sell_named(engine, session)
    sell_named(engine, session, "李四", resident_id("11010119800101123"))
    with engine.begin() as conn:
        first, second = conn.execute(sa.select(holders).order_by(holders.c.id)).all()
        conn.execute(sa.update(holders).where(holders.c.id == second.id)
                     .values(sealed_name=first.sealed_name))
        with pytest.raises(SealError, match=f"holders:{second.id}:name"):
            holder(conn, second.id)


def test_a_holder_is_found_by_the_keyed_hash_of_the_document_number(hub):
    engine, venue, session = hub
    sell_named(engine, session)
    with engine.connect() as conn:
        found = conn.execute(sa.select(holders.c.id).where(document_match(conn, NUMBER))).all()
        none = conn.execute(sa.select(holders.c.id).where(
            document_match(conn, resident_id("11010119800101123")))).all()
    assert len(found) == 1 and none == []


def test_the_allowlist_pull_serves_holders_in_clear_to_the_appliance(hub, hub_url):
    from cloud.app import create_app
    from cloud.fleet import appliances

    engine, venue, session = hub
    sell_named(engine, session)
    app = create_app({"DATABASE_URL": hub_url, "SECRET_KEY": "x" * 32, "TESTING": True})
    with engine.begin() as conn:
        token = appliances.register(conn, venue, "Gate box 1").token
    client = app.test_client()
    enrolled = client.post("/api/sync/v1/enroll", json={"token": token}).get_json()
    page = client.get("/api/sync/v1/allowlist?since=0", headers={
        "Authorization": f"Appliance {enrolled['credential']}"}).get_json()
    served = [c for c in page["changes"] if c["type"] == "holder"]
    assert [(c["name"], c["doc_number"]) for c in served] == [(NAME, NUMBER)]
    assert client.get("/api/sync/v1/allowlist?since=0").status_code == 401
    app.extensions["db"].dispose()
