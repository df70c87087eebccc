"""Emergency export and import of entries as signed files, and allowlist files from USB."""

from __future__ import annotations

import html
import io
import json

import pytest

from edge import emergency, staff
from edge.engine import Engine, Scan, ScanKind
from edge.holders import HolderVault
from sync import allowlist_file
from sync.keys import generate_signing_key
from sync.timeutil import utcnow
from tests.edge.web.conftest import PASSWORDS, Browser, app_for, make_appliance


@pytest.fixture
def other(tmp_path, live_venue):
    """A second appliance of the same venue, with its own holder key and admin."""
    a = make_appliance(tmp_path / "other", live_venue)
    staff.create_user(a["conn"], "admin", PASSWORDS["admin"], "admin", "test")
    a["app"] = app_for(a)
    yield a
    a["conn"].close()


def admin_of(app) -> Browser:
    b = Browser(app.test_client())
    assert b.login("admin", PASSWORDS["admin"]).status_code == 302
    return b


def scan_some(appliance, n=3):
    engine = Engine(appliance["conn"], HolderVault(appliance["holder_key"]))
    tickets = [t for t in appliance["venue"].tickets.values()
               if t.session_id == 1 and t.zone_id in (1, 2)][:n]
    for t in tickets:
        assert engine.decide(Scan(ScanKind.QR, t.code), "N1").reason == "OK"
    engine.decide(Scan(ScanKind.QR, "nonsense"), "N2")
    return tickets


def export_from(b: Browser) -> tuple[str, bytes]:
    b.get("/emergency/")
    r = b.post("/emergency/export")
    assert r.status_code == 200 and r.mimetype == "application/x-ndjson"
    name = r.headers["Content-Disposition"].split('filename="')[1].rstrip('"')
    return name, r.data


def fingerprint_of(b: Browser) -> str:
    page = b.get("/emergency/").data.decode()
    return page.split('id="fingerprint">')[1].split("<")[0]


def test_export_then_import_on_another_appliance(as_role, appliance, other):
    tickets = scan_some(appliance)
    typed = appliance["conn"].execute("SELECT id FROM entries ORDER BY seq").fetchone()[0]
    appliance["conn"].execute("UPDATE entries SET scan_kind = 'manual', staff = 'alice' "
                              "WHERE id = ?", (typed,))
    a = as_role("admin")
    name, data = export_from(a)
    assert name.startswith("wicket-entries-OSC-") and name.endswith(".jsonl")
    lines = data.decode().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "wicket-entries" and header["count"] == 4
    assert "signature" in json.loads(lines[-1])
    fp = fingerprint_of(a)
    assert fp == header["appliance"]

    b = admin_of(other["app"])
    (other["usb"] / name).write_bytes(data)
    page = b.get("/emergency/").data.decode()
    assert name in page
    path = str(other["usb"] / name)
    # without the exporting appliance's fingerprint, or with another one: refused
    for given in ("", fingerprint_of(b)):
        r = b.post("/emergency/import-entries", {"path": path, "fingerprint": given})
        assert r.status_code == 303
        assert "Import refused" in b.get("/emergency/").data.decode()
    assert other["conn"].execute("SELECT count(*) FROM entries").fetchone() == (0,)
    # with it: imported, once
    r = b.post("/emergency/import-entries", {"path": path, "fingerprint": fp.lower()})
    assert "Imported 4 entries" in b.get("/emergency/").data.decode()
    r = b.post("/emergency/import-entries", {"path": path, "fingerprint": fp.replace("-", "")})
    assert "Imported 0 entries" in b.get("/emergency/").data.decode()
    rows = other["conn"].execute("SELECT id, imported_from, acked_at FROM entries").fetchall()
    assert len(rows) == 4 and {r[1] for r in rows} == {fp} and {r[2] for r in rows} == {None}
    ours = {r[0] for r in appliance["conn"].execute("SELECT id FROM entries")}
    assert {r[0] for r in rows} == ours
    assert other["conn"].execute("SELECT scan_kind, staff FROM entries WHERE id = ?",
                                 (typed,)).fetchone() == ("manual", "alice")
    # the other appliance now knows these tickets are used
    engine = Engine(other["conn"], HolderVault(other["holder_key"]))
    assert engine.decide(Scan(ScanKind.QR, tickets[0].code), "N2").reason == "ALREADY_ENTERED"
    actions = [r for r in other["conn"].execute(
        "SELECT action, detail FROM audit_log WHERE action LIKE 'entries.%' ORDER BY id")]
    assert [a for a, _ in actions] == ["entries.import_refused", "entries.import_refused",
                                       "entries.import", "entries.import"]
    assert json.loads(actions[2][1])["added"] == 4
    assert appliance["conn"].execute("SELECT count(*) FROM audit_log WHERE action = "
                                     "'entries.export'").fetchone() == (1,)


def test_a_changed_or_cut_file_is_refused(as_role, appliance, other):
    scan_some(appliance)
    a = as_role("admin")
    _, data = export_from(a)
    fp = fingerprint_of(a)
    key = emergency.signing_key(other["holder_key"])
    lines = data.split(b"\n")
    forged_entry = json.loads(lines[1])
    forged_entry["admitted"] = 1
    forged_entry["reason"] = "OK"
    forged_entry["id"] = forged_entry["id"][:-1] + ("0" if forged_entry["id"][-1] != "0" else "1")
    tampered = b"\n".join([lines[0], json.dumps(forged_entry).encode(), *lines[1:]])
    cut = b"\n".join(lines[:2] + lines[-2:])
    for bad, why in ((tampered, "signature does not match"), (cut, "signature does not match"),
                     (b"hello\n", "not an entry export"), (data[:-10], "not an entry export")):
        with pytest.raises(emergency.ExportFileError, match=why):
            emergency.read_export(bad, key, fp)
    # a file re-signed by a third key is refused for the given fingerprint
    mallory = emergency.signing_key("bWFsbG9yeSBtYWxsb3J5IG1hbGxvcnkgbWFsbG9yeQ==")
    body = data[:data.rstrip(b"\n").rfind(b"\n") + 1]
    header = json.loads(body.split(b"\n")[0])
    header["public_key"] = emergency.base64.b64encode(emergency._raw(mallory.public_key())
                                                      ).decode()
    body = b"\n".join([json.dumps(header).encode(), *body.split(b"\n")[1:]])
    resigned = body + json.dumps({"signature": emergency.base64.b64encode(
        mallory.sign(body)).decode()}).encode() + b"\n"
    with pytest.raises(emergency.ExportFileError, match="not by the appliance"):
        emergency.read_export(resigned, key, fp)
    # the page reports the refusal, and nothing is added
    b = admin_of(other["app"])
    b.get("/emergency/")
    r = b.client.post("/emergency/import-entries", data={
        "csrf_token": b.csrf, "fingerprint": fp,
        "file": (io.BytesIO(tampered), "entries.jsonl")})
    assert r.status_code == 303
    assert "signature does not match" in b.get("/emergency/").data.decode()
    assert other["conn"].execute("SELECT count(*) FROM entries").fetchone() == (0,)


def test_own_export_imports_without_a_fingerprint(as_role, appliance):
    scan_some(appliance, 2)
    a = as_role("admin")
    a.get("/emergency/")
    r = a.post("/emergency/export", {"since": "yesterday"})
    assert r.status_code == 303
    assert "Give the time as" in a.get("/emergency/").data.decode()
    r = a.post("/emergency/export", {"since": "2999-01-01T00:00"})
    assert json.loads(r.data.split(b"\n")[0])["count"] == 0
    _, data = export_from(a)
    result = emergency.import_entries(appliance["conn"], appliance["holder_key"], data, "test")
    assert (result.count, result.added, result.present) == (3, 0, 3)


def test_a_path_outside_the_usb_stick_is_refused(as_role, appliance, tmp_path):
    a = as_role("admin")
    a.get("/emergency/")
    secret = tmp_path / "box" / "edge.toml"
    r = a.post("/emergency/import-allowlist", {"path": str(secret)})
    assert r.status_code == 303
    assert "Choose a file from the USB stick" in a.get("/emergency/").data.decode()
    link = appliance["usb"] / "link.jsonl"
    link.symlink_to(secret)
    a.post("/emergency/import-allowlist", {"path": str(link)})
    assert "Choose a file from the USB stick" in a.get("/emergency/").data.decode()


FAMILY = {"seq": 10_000, "type": "zone", "op": "upsert", "id": 7, "code": "F",
          "name": "Family Zone"}
OSC = {"id": 1, "code": "OSC"}


def test_allowlist_import_from_usb(as_role, appliance, hub_key):
    conn = appliance["conn"]
    a = as_role("admin")
    good = appliance["usb"] / "update.jsonl"
    good.write_bytes(allowlist_file.sign([FAMILY], hub_key, OSC, utcnow()))
    bad = appliance["usb"] / "broken.jsonl"
    bad.write_bytes(allowlist_file.sign([{"seq": 10001, "type": "zone", "op": "upsert",
                                          "id": 8}], hub_key, OSC, utcnow()))
    a.get("/emergency/")
    a.post("/emergency/import-allowlist", {"path": str(bad)})
    page = a.get("/emergency/").data.decode()
    assert "Import refused" in page and "broken.jsonl:2" in page
    assert conn.execute("SELECT count(*) FROM zones WHERE id = 8").fetchone() == (0,)
    a.post("/emergency/import-allowlist", {"path": str(good)})
    assert "Allowlist imported: 1 changes applied" in a.get("/emergency/").data.decode()
    assert conn.execute("SELECT name FROM zones WHERE id = 7").fetchone() == ("Family Zone",)
    actions = [r[0] for r in conn.execute("SELECT action FROM audit_log WHERE action LIKE "
                                          "'allowlist.%' ORDER BY id")]
    assert actions == ["allowlist.import_refused", "allowlist.import"]
    (detail,) = conn.execute("SELECT detail FROM audit_log WHERE action = 'allowlist.import'"
                             ).fetchone()
    assert json.loads(detail)["signed_by"] == hub_key.key_id


@pytest.mark.parametrize("make, why", [
    (lambda key: (json.dumps(FAMILY) + "\n").encode(), "not signed by the hub"),
    (lambda key: allowlist_file.sign([FAMILY], generate_signing_key(key.key_id), OSC,
                                     utcnow()), "signature does not match hub key 1"),
    (lambda key: allowlist_file.sign([FAMILY], generate_signing_key(9), OSC, utcnow()),
     "hub key 9, which this appliance does not trust"),
    (lambda key: allowlist_file.sign([FAMILY], key, OSC, utcnow()).replace(b"Family",
                                                                          b"Famine"),
     "changed after the hub signed it"),
    (lambda key: allowlist_file.sign([FAMILY], key, {"id": 2, "code": "WKS"}, utcnow()),
     "this file is for venue"),
])
def test_the_page_refuses_every_file_the_hub_did_not_sign_for_this_venue(as_role, appliance,
                                                                         hub_key, make, why):
    conn = appliance["conn"]
    a = as_role("admin")
    a.get("/emergency/")
    r = a.post("/emergency/import-allowlist", {"file": (io.BytesIO(make(hub_key)),
                                                        "update.jsonl")})
    assert r.status_code == 303
    page = a.get("/emergency/").data.decode()
    assert "Import refused" in page and "update.jsonl: " in page, page
    assert why in html.unescape(page)
    assert conn.execute("SELECT count(*) FROM zones WHERE id = 7").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM audit_log WHERE action = "
                        "'allowlist.import_refused'").fetchone() == (1,)




def test_an_entry_written_before_entries_named_their_staff_is_read(appliance):
    scan_some(appliance)
    row = appliance["conn"].execute(
        f"SELECT {', '.join(emergency.COLUMNS)} FROM entries LIMIT 1").fetchone()
    old = {k: v for k, v in zip(emergency.COLUMNS, row, strict=True) if k != "staff"}
    assert emergency._check_entry(json.dumps(old).encode(), 2)["staff"] is None
    with pytest.raises(emergency.ExportFileError, match="not an entry record"):
        emergency._check_entry(json.dumps({**old, "staff": None, "extra": 1}).encode(), 2)
