"""The hub's signed allowlist export, on the venue page and the command line, imported by an
appliance that holds the hub's keys from the sync — on both databases."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloud.catalog.venues import create_venue
from cloud.core.audit import audit_log
from cloud.core.changes import changes_since
from cloud.core.trust import signing_keys
from cloud.fleet.allowlist_export import ExportError, export_allowlist
from cloud.fleet.keys import activate_key, create_key
from cloud.sales.tickets import issue_ticket
from edge.allowlist import AllowlistError, apply_changes, import_file
from sync import allowlist_file
from sync.changes import parse_change
from sync.keys import KeyRing
from tests.cloud.pagekit import build_hub, post, text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    with h.engine.begin() as conn:
        for _ in range(3):
            issue_ticket(conn, session_id=h.session)
        h.other = create_venue(conn, "AQC", "Aquatics Centre")
    yield h
    h.engine.dispose()


def hub_ring(hub) -> KeyRing:
    with hub.engine.connect() as conn:
        return KeyRing({r.key_id: r.public_key for r in conn.execute(sa.select(signing_keys))})


def sync_keys_into(edge_conn, vault, hub, venue_id):
    """What the sync agent does: the venue's key records, from the hub's change log."""
    with hub.engine.connect() as conn:
        keys = [c for c in changes_since(conn, venue_id, 0, 10_000) if c["type"] == "key"]
    apply_changes(edge_conn, vault, [parse_change(c) for c in keys])


def download(hub, role="admin"):
    client = hub.client(role)
    page = f"/venues/{hub.venue}/allowlist"
    return client, client.get(page), post(client, page, page=page)


def test_an_admin_downloads_the_signed_allowlist_after_confirming(hub):
    client, confirm, r = download(hub)
    assert confirm.status_code == 200 and "Yes, download the signed file" in text(confirm)
    assert "names and ID numbers" in text(confirm)
    assert f'/venues/{hub.venue}/allowlist' in text(client.get(f"/venues/{hub.venue}"))
    assert r.status_code == 200 and r.mimetype == "application/x-ndjson"
    assert 'filename="wicket-allowlist-OSC-' in r.headers["Content-Disposition"]
    signed = allowlist_file.read(r.data, hub_ring(hub).get, hub.venue)
    records = [json.loads(line) for _, line in signed.lines]
    assert signed.venue_code == "OSC" and signed.key_id == 1
    assert sum(1 for c in records if c["type"] == "ticket") == 3
    assert {c["type"] for c in records} >= {"venue", "zone", "gate", "session", "ticket"}
    assert not any(c["type"] == "key" for c in records)
    with hub.engine.connect() as conn:
        (row,) = conn.execute(sa.select(audit_log).where(
            audit_log.c.action == "venue.export_allowlist")).all()
    assert row.actor == f"staff:{hub.staff['admin']}" and row.subject == f"venue:{hub.venue}"
    assert row.after["key_id"] == 1 and row.after["changes"] == len(records)


def test_only_admins_export_and_a_get_downloads_nothing(hub):
    for role in ("sales", "ops"):
        _, confirm, r = download(hub, role)
        assert confirm.status_code == 403 and r.status_code == 403
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(
            audit_log.c.action == "venue.export_allowlist")).scalar() == 0


def test_without_an_active_key_the_page_says_so_and_nothing_is_exported(hub_url):
    hub = build_hub(hub_url)
    try:
        with hub.engine.begin() as conn:
            conn.execute(sa.update(signing_keys).values(state="retired"))
        client, confirm, r = download(hub)
        assert "no active signing key" in text(confirm)
        assert r.status_code == 303
        assert "no active signing key" in text(client.get(r.headers["Location"]))
    finally:
        hub.engine.dispose()


def test_an_appliance_imports_the_hubs_export_with_the_keys_it_has_from_the_sync(
        hub, conn, vault, tmp_path):
    _, _, r = download(hub)
    path = tmp_path / "export.jsonl"
    path.write_bytes(r.data)
    with pytest.raises(AllowlistError, match="does not trust"):
        import_file(conn, vault, path)  # no sync yet: no key, no import
    sync_keys_into(conn, vault, hub, hub.venue)
    keys = conn.execute("SELECT * FROM hub_keys").fetchall()
    result = import_file(conn, vault, path)
    assert result.signed_by == 1 and result.counts["ticket"] == 3
    assert conn.execute("SELECT code FROM venue").fetchall() == [("OSC",)]
    assert conn.execute("SELECT * FROM hub_keys").fetchall() == keys


@pytest.mark.parametrize("key_store", ["wrapped", "token"], indirect=True)
def test_a_new_active_key_signs_later_exports_and_the_appliance_learns_it_by_sync(
        hub, conn, vault, tmp_path, key_store):
    sync_keys_into(conn, vault, hub, hub.venue)
    with hub.engine.begin() as conn_hub:
        activate_key(conn_hub, create_key(conn_hub), force=True)
        data = export_allowlist(conn_hub, "OSC", "test").data
    path = tmp_path / "export.jsonl"
    path.write_bytes(data)
    with pytest.raises(AllowlistError, match="hub key 2, which this appliance does not trust"):
        import_file(conn, vault, path)
    sync_keys_into(conn, vault, hub, hub.venue)
    assert import_file(conn, vault, path).signed_by == 2


def test_another_venues_export_is_refused_by_the_appliance(hub, conn, vault, tmp_path):
    sync_keys_into(conn, vault, hub, hub.venue)
    with hub.engine.begin() as conn_hub:
        import_file(conn, vault, _write(tmp_path / "osc.jsonl",
                                        export_allowlist(conn_hub, hub.venue, "test").data))
        other = export_allowlist(conn_hub, "AQC", "test").data
    with pytest.raises(AllowlistError, match="for venue 'AQC'"):
        import_file(conn, vault, _write(tmp_path / "aqc.jsonl", other))


def test_an_unknown_venue_is_an_error(hub):
    with hub.engine.begin() as conn, pytest.raises(ExportError, match="no venue 'NOPE'"):
        export_allowlist(conn, "NOPE", "test")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_the_command_line_writes_an_owner_only_file_and_never_overwrites(hub, hub_url,
                                                                         tmp_path):
    out = tmp_path / "osc.jsonl"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "cloud.cli", "--db", hub_url,
                               "export-allowlist", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)

    r = run("--venue", "OSC", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "signed with key 1" in r.stdout
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    signed = allowlist_file.read(out.read_bytes(), hub_ring(hub).get, hub.venue)
    assert signed.venue_code == "OSC"
    again = run("--venue", "OSC", "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr
    missing = run("--venue", "NOPE", "--out", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "no venue 'NOPE'" in missing.stderr
    assert not (tmp_path / "nope.jsonl").exists()
    with hub.engine.connect() as conn:
        actors = conn.execute(sa.select(audit_log.c.actor).where(
            audit_log.c.action == "venue.export_allowlist")).scalars().all()
    assert len(actors) == 1 and actors[0].startswith("cli:")
