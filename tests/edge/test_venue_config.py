"""The one writer of zones, gates, lanes and devices: what it refuses (by code, nothing
written) and what it records (the row and its audit record, together)."""

from __future__ import annotations

import json

import pytest

from edge import venue_config
from edge.venue_config import VenueConfigError


def audit_rows(conn, action: str) -> list[tuple[str, str, dict]]:
    return [(actor, subject, json.loads(detail)) for actor, subject, detail in conn.execute(
        "SELECT actor, subject, detail FROM audit_log WHERE action = ? ORDER BY id", (action,))]


def count(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def gate(conn) -> int:
    zone = venue_config.save_zone(conn, "admin", "Z1", "Stalls")
    return venue_config.save_gate(conn, "admin", code="G1", name="North", zones=[zone],
                                  open_before_min=60, close_after_min=30)


def test_a_zone_is_saved_with_its_audit_record_and_changed_with_before_and_after(conn):
    zone_id = venue_config.save_zone(conn, "admin", "Z1", "Stalls")
    venue_config.save_zone(conn, "boss", "Z1", "Stalls east", zone_id)
    assert conn.execute("SELECT code, name FROM zones WHERE id = ?",
                        (zone_id,)).fetchone() == ("Z1", "Stalls east")
    assert audit_rows(conn, "zone.create") == [
        ("admin", f"zone:{zone_id}", {"code": "Z1", "name": "Stalls"})]
    assert audit_rows(conn, "zone.update") == [
        ("boss", f"zone:{zone_id}", {"before": {"code": "Z1", "name": "Stalls"},
                                     "after": {"code": "Z1", "name": "Stalls east"}})]


@pytest.mark.parametrize("code, name", [("", "Stalls"), ("Z 1", "Stalls"), ("Z1", ""),
                                        ("Z" * 17, "Stalls")])
def test_a_zone_without_a_code_or_a_name_is_refused_and_nothing_is_written(conn, code, name):
    with pytest.raises(VenueConfigError) as e:
        venue_config.save_zone(conn, "admin", code, name)
    assert e.value.code == "bad_zone"
    assert count(conn, "zones") == 0 and count(conn, "audit_log") == 0


def test_changing_a_zone_that_is_not_there_is_refused_as_not_found(conn):
    with pytest.raises(VenueConfigError) as e:
        venue_config.save_zone(conn, "admin", "Z1", "Stalls", 99)
    assert e.value.code == "not_found"
    assert count(conn, "zones") == 0 and count(conn, "audit_log") == 0


def test_a_gate_is_saved_with_its_policy_its_zones_and_its_audit_record(conn, gate):
    (saved,) = venue_config.gates(conn)
    assert saved["code"] == "G1" and saved["zones"] == [1]
    assert (saved["open_before_min"], saved["close_after_min"]) == (60, 30)
    (actor, subject, detail), = audit_rows(conn, "gate.create")
    assert (actor, subject, detail["before"]) == ("admin", f"gate:{gate}", None)
    assert detail["after"]["zones"] == [1] and detail["after"]["realname_mode"] == "ticket"
    venue_config.save_gate(conn, "boss", code="G1", name="North", realname_mode="id_only",
                           open_before_min=0, close_after_min=0, manual_entry=True,
                           gate_id=gate)
    (_, _, detail), = audit_rows(conn, "gate.update")
    assert detail["before"]["zones"] == [1] and detail["after"]["zones"] == []
    assert detail["after"]["manual_entry"] is True
    assert conn.execute("SELECT count(*) FROM gate_zones").fetchone()[0] == 0


@pytest.mark.parametrize("values, code", [
    ({"code": "", "name": "North"}, "bad_gate"),
    ({"realname_mode": "face"}, "bad_realname_mode"),
    ({"open_before_min": -1}, "bad_margins"),
    ({"close_after_min": 24 * 60 + 1}, "bad_margins"),
    ({"close_after_min": None}, "bad_margins"),
    ({"zones": [42]}, "unknown_zone"),
    ({"gate_id": 42}, "not_found"),
])
def test_a_gate_with_a_wrong_value_is_refused_by_code_and_nothing_is_written(conn, values,
                                                                             code):
    args = {"code": "G1", "name": "North", "open_before_min": 60, "close_after_min": 30,
            **values}
    with pytest.raises(VenueConfigError) as e:
        venue_config.save_gate(conn, "admin", **args)
    assert e.value.code == code
    assert count(conn, "gates") == 0 and count(conn, "audit_log") == 0


def test_a_second_gate_with_the_same_code_is_refused_and_the_first_is_kept(conn, gate):
    with pytest.raises(VenueConfigError) as e:
        venue_config.save_gate(conn, "admin", code="G1", name="Copy", open_before_min=0,
                               close_after_min=0)
    assert (e.value.code, e.value.params) == ("gate_code_taken", {"code": "G1"})
    assert count(conn, "gates") == 1 and audit_rows(conn, "gate.create")[1:] == []


def test_a_lane_takes_its_devices_from_their_old_lane_and_is_audited(conn, gate):
    venue_config.create_device(conn, "admin", device_id="cam-1", kind="qr_camera",
                               config={"source": "0"}, enabled=False)
    first = venue_config.save_lane(conn, "admin", code="N1", gate_id=gate,
                                   passage_timeout_s=6, devices=["cam-1"])
    second = venue_config.save_lane(conn, "admin", code="N2", gate_id=gate, direction="out",
                                    passage_timeout_s=8, devices=["cam-1"])
    assert conn.execute("SELECT lane_id FROM devices WHERE id = 'cam-1'").fetchone() == (second,)
    by_id = {lane["id"]: lane for lane in venue_config.lanes(conn)}
    assert by_id[first]["devices"] == [] and by_id[second]["devices"] == ["cam-1"]
    assert [(s, d["after"]["code"]) for _, s, d in audit_rows(conn, "lane.create")] == [
        (f"lane:{first}", "N1"), (f"lane:{second}", "N2")]
    venue_config.save_lane(conn, "boss", code="N1", gate_id=gate, passage_timeout_s=10,
                           enabled=False, lane_id=first)
    (_, _, detail), = audit_rows(conn, "lane.update")
    assert (detail["before"]["passage_timeout_s"], detail["after"]["passage_timeout_s"]) == \
        (6, 10)


@pytest.mark.parametrize("values, code", [
    ({"code": "N 1"}, "bad_lane_code"),
    ({"direction": "up"}, "bad_direction"),
    ({"passage_timeout_s": 0}, "bad_passage_timeout"),
    ({"passage_timeout_s": 601}, "bad_passage_timeout"),
    ({"passage_timeout_s": None}, "bad_passage_timeout"),
    ({"gate_id": None}, "unknown_gate"),
    ({"gate_id": 42}, "unknown_gate"),
    ({"devices": ["nobody"]}, "unknown_device"),
    ({"lane_id": 42}, "not_found"),
])
def test_a_lane_with_a_wrong_value_is_refused_by_code_and_nothing_is_written(conn, gate,
                                                                             values, code):
    before = count(conn, "audit_log")
    args = {"code": "N1", "gate_id": gate, "passage_timeout_s": 6, **values}
    with pytest.raises(VenueConfigError) as e:
        venue_config.save_lane(conn, "admin", **args)
    assert e.value.code == code
    assert count(conn, "lanes") == 0 and count(conn, "audit_log") == before


def test_a_device_is_created_changed_switched_and_deleted_each_with_its_audit_record(conn):
    venue_config.create_device(conn, "admin", device_id="ts-1", kind="turnstile",
                               name="Turnstile", config={"port": "/dev/ttyUSB0"})
    venue_config.update_device(conn, "admin", "ts-1", kind="turnstile", name="Turnstile",
                               config={"port": "/dev/ttyUSB1"}, enabled=True)
    venue_config.set_device_enabled(conn, "admin", "ts-1", False)
    assert conn.execute("SELECT config, enabled FROM devices WHERE id = 'ts-1'").fetchone() == \
        ('{"port": "/dev/ttyUSB1"}', 0)
    venue_config.delete_device(conn, "admin", "ts-1")
    assert count(conn, "devices") == 0
    actions = [a for (a,) in conn.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["device.create", "device.update", "device.disable", "device.delete"]
    (_, _, detail), = audit_rows(conn, "device.update")
    assert detail["before"]["config"] == {"port": "/dev/ttyUSB0"}
    assert detail["after"]["config"] == {"port": "/dev/ttyUSB1"}


def test_every_problem_of_a_device_is_listed_and_the_first_refuses_it(conn):
    assert venue_config.device_problems(conn, "bad id!", "toaster", 42) == [
        "bad_device_id", "bad_device_kind", "unknown_lane"]
    with pytest.raises(VenueConfigError) as e:
        venue_config.create_device(conn, "admin", device_id="cam-1", kind="toaster")
    assert e.value.code == "bad_device_kind"
    assert count(conn, "devices") == 0 and count(conn, "audit_log") == 0


def test_a_device_id_taken_or_missing_is_refused_by_code(conn):
    venue_config.create_device(conn, "admin", device_id="cam-1", kind="qr_camera")
    with pytest.raises(VenueConfigError) as e:
        venue_config.create_device(conn, "admin", device_id="cam-1", kind="rfid_reader")
    assert e.value.code == "device_exists"
    for change in (lambda: venue_config.update_device(conn, "admin", "cam-2", kind="qr_camera"),
                   lambda: venue_config.set_device_enabled(conn, "admin", "cam-2", True),
                   lambda: venue_config.delete_device(conn, "admin", "cam-2")):
        with pytest.raises(VenueConfigError) as e:
            change()
        assert e.value.code == "not_found"
    assert count(conn, "audit_log") == 1
