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
