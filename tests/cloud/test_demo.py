import json

import sqlalchemy as sa

from cloud import cli
from cloud.core.changes import changes_since, open_changes
from cloud.core.db import init_db, make_engine
from cloud.sales.tables import tickets
from sync.changes import parse_change


def test_load_demo_builds_a_venue_whose_allowlist_the_edge_accepts(hub_url, capsys):
    init_db(hub_url)
    assert cli.main(["--db", hub_url, "load-demo", "--tickets", "600"]) == 0
    out = capsys.readouterr().out
    assert "650 tickets issued" in out
    seats = int(out.split(": ")[1].split(" seats")[0])
    assert 19_900 <= seats <= 20_000
    engine = make_engine(hub_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)
                            .where(tickets.c.holder_id.is_not(None))).scalar() == 600
        changes = open_changes(conn, changes_since(conn, 1, 0, limit=100_000))  # as served
    engine.dispose()
    for change in changes:
        parse_change(change)
    assert cli.main(["--db", hub_url, "load-demo"]) == 2
    assert "loaded already" in capsys.readouterr().err


def test_a_dump_of_the_demo_hub_holds_no_clear_document_number_or_name(hub_url, capsys):
    """The demo's holders, opened with the data key, appear nowhere in clear in the database
    (the SQLite file's bytes, or pg_dump)."""
    from cloud.sales.holders import holder
    from cloud.sales.tables import holders
    from tests.cloud.test_seal_migration import _database_bytes

    init_db(hub_url)
    assert cli.main(["--db", hub_url, "load-demo", "--tickets", "120"]) == 0
    engine = make_engine(hub_url)
    with engine.connect() as conn:
        people = [holder(conn, i) for i in conn.execute(sa.select(holders.c.id)).scalars()]
    engine.dispose()
    assert len(people) == 120
    dump = _database_bytes(hub_url)
    assert [h.doc_number for h in people if h.doc_number.encode() in dump] == []
    assert [h.name for h in people if h.name.encode() in dump
            or json.dumps(h.name)[1:-1].encode() in dump] == []
