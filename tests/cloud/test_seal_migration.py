"""Migration 0015 seals the clear holders a hub already holds: after the upgrade, no clear
name or document number is anywhere in the database (the SQLite file's bytes, or a pg_dump of
the PostgreSQL database)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from cloud.core.changes import changes_since, open_changes
from cloud.core.db import alembic_config, init_db, make_engine
from cloud.core.seal import key_id_of
from cloud.sales.holders import document_match, holder
from cloud.sales.tables import holders
from sync.sample import resident_id

pytestmark = pytest.mark.empty_hub  # migration tests: an empty database

PEOPLE = [(1, "张小三", resident_id("11010119900307123")),
          (2, "Wang Dawei", resident_id("31010419851224567"))]
_holders = sa.table("holders", sa.column("id"), sa.column("name"), sa.column("doc_type"),
                    sa.column("doc_number"))
_log = sa.table("change_log", sa.column("seq"), sa.column("venue_id"), sa.column("kind"),
                sa.column("op"), sa.column("record", sa.JSON), sa.column("created_at"))


def _upgrade_to(url: str, revision: str) -> None:
    engine = make_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def _clear_hub(url: str) -> None:
    """A hub at revision 0014 holding two holders in clear, in their table and in the log."""
    _upgrade_to(url, "0014")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(_holders), [{"id": i, "name": n, "doc_type": "resident_id",
                                            "doc_number": d} for i, n, d in PEOPLE])
        conn.execute(sa.insert(_log), [
            {"seq": i, "venue_id": 1, "kind": "holder", "op": "upsert",
             "created_at": datetime(2026, 7, 1, tzinfo=UTC),
             "record": {"type": "holder", "op": "upsert", "id": i, "name": n,
                        "doc_type": "resident_id", "doc_number": d, "seq": i}}
            for i, n, d in PEOPLE])
        conn.execute(sa.text("UPDATE counters SET value = 2 WHERE name = 'change_log'"))
    engine.dispose()


def _from_0015_to_head(url: str) -> list[str]:
    """The revisions an upgrade from 0014 applies, in order, from the migrations themselves."""
    script = ScriptDirectory.from_config(alembic_config(url))
    oldest_first = [r.revision for r in script.walk_revisions()][::-1]
    assert oldest_first[-1] == script.get_current_head()
    return oldest_first[oldest_first.index("0015"):]


def _needles() -> list[bytes]:
    """Every way a name or number could sit in the database: UTF-8, and JSON-escaped."""
    out = []
    for _, name, number in PEOPLE:
        for text in (name, number):
            out += [text.encode("utf-8"), json.dumps(text)[1:-1].encode("ascii")]
    return sorted(set(out))


def _database_bytes(url: str) -> bytes:
    u = sa.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        files = sorted(Path(u.database).parent.glob(Path(u.database).name + "*"))
        return b"".join(f.read_bytes() for f in files)
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump (Debian package postgresql-client) is needed for this test"
    r = subprocess.run([pg_dump, "--no-owner", "--dbname",
                        u.set(drivername="postgresql").render_as_string(hide_password=False)],
                       capture_output=True, check=True)
    return r.stdout


def test_the_upgrade_seals_clear_holders_and_leaves_no_clear_value_in_the_database(hub_url):
    _clear_hub(hub_url)
    before = _database_bytes(hub_url)
    assert PEOPLE[1][2].encode() in before  # the check below can see a clear value

    applied = init_db(hub_url)
    assert applied[0] == "0015" and applied == _from_0015_to_head(hub_url)
    after = _database_bytes(hub_url)
    assert [n for n in _needles() if n in after] == []

    engine = make_engine(hub_url)
    with engine.connect() as conn:
        for i, name, number in PEOPLE:
            h = holder(conn, i)
            assert (h.name, h.doc_number) == (name, number)
            assert conn.execute(sa.select(holders.c.id).where(
                document_match(conn, number))).scalar_one() == i
        logged = changes_since(conn, 1, 0)
        assert all(key_id_of(c["name"]) and key_id_of(c["doc_number"]) for c in logged)
        served = open_changes(conn, logged)
        assert [(c["name"], c["doc_number"]) for c in served] == [(n, d) for _, n, d in PEOPLE]
    engine.dispose()


def test_the_upgrade_needs_the_data_key_and_changes_nothing_without_it(hub_url, tmp_path,
                                                                          monkeypatch):
    from cloud.core.seal import ENV, SealError

    _clear_hub(hub_url)
    monkeypatch.setenv(ENV, str(tmp_path / "missing.key"))
    with pytest.raises(SealError, match="no such file"):
        init_db(hub_url)
    monkeypatch.undo()
    engine = make_engine(hub_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(_holders.c.name).order_by(_holders.c.id)
                            ).scalars().all() == [n for _, n, _ in PEOPLE]
    engine.dispose()
    applied = init_db(hub_url)
    assert applied[0] == "0015" and applied == _from_0015_to_head(hub_url)
