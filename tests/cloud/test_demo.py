import json
from datetime import timedelta

import sqlalchemy as sa

from cloud import cli
from cloud.core.changes import changes_since, open_changes
from cloud.core.db import init_db, make_engine
from cloud.demo import PRESALE_CLOSES, PRESALE_TIERS
from cloud.sales.tables import tickets
from sync.changes import parse_change
from sync.timeutil import utcnow


def test_load_demo_builds_a_venue_whose_allowlist_the_edge_accepts(hub_url, capsys):
    init_db(hub_url)
    assert cli.main(["--db", hub_url, "load-demo", "--tickets", "600"]) == 0
    out = capsys.readouterr().out
    assert "650 tickets issued" in out
    assert "demo presale 1: freeze and draw it at /presales/1" in out
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
    _the_demo_presale_is_drawn_once_it_closes(hub_url)
    assert cli.main(["--db", hub_url, "load-demo"]) == 2
    assert "loaded already" in capsys.readouterr().err


def _the_demo_presale_is_drawn_once_it_closes(hub_url):
    from cloud.lottery import drawing, freezing
    from cloud.lottery.views import lot_counts

    engine = make_engine(hub_url)
    later = utcnow() + PRESALE_CLOSES + timedelta(seconds=1)
    try:
        with engine.begin() as conn:
            freezing.freeze(conn, 1, "staff:1", later)
            assert freezing.enter_seed(conn, 1, "staff:1", "demo 42", later) == "first"
            assert freezing.enter_seed(conn, 1, "staff:2", "demo 42", later) == "fixed"
            drawing.run_draw(conn, 1, "staff:1", later + timedelta(days=1), later)
            counts = lot_counts(conn, 1)
    finally:
        engine.dispose()
    assert [c["applications"] for c in counts] == [a for *_, a in PRESALE_TIERS]
    for c, (*_, in_draw, _apps) in zip(counts, PRESALE_TIERS, strict=True):
        assert 0 < c["drawn"] <= min(in_draw, c["applied"])
    assert counts[0]["ratio"] > 1 and counts[0]["drawn"] < counts[0]["applied"]  # asked for
    # several times over: some are not drawn


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
