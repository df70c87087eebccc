"""``wicket-hub waiting-room``: a session's own rate and burst set, shown and handed back to the
hub's settings, on both databases."""

from __future__ import annotations

import sqlalchemy as sa

from cloud.cli import main
from cloud.storefront.tables import waiting_rooms
from tests.cloud.orderkit import build


def test_a_session_gets_a_rate_of_its_own_and_hands_it_back(hub_url, key_store, capsys,
                                                            monkeypatch):
    hub = build(hub_url)
    monkeypatch.setenv("WICKET_HUB_WAITING_ROOM_RATE", "3")
    try:
        assert main(["--db", hub_url, "waiting-room", str(hub.session)]) == 0
        assert "waiting room 3 a second; 0 numbers given" in capsys.readouterr().out
        assert main(["--db", hub_url, "waiting-room", str(hub.session), "--rate", "0.5",
                     "--burst", "4"]) == 0
        assert "waiting room 0.5 a second" in capsys.readouterr().out
        with hub.engine.connect() as conn:
            assert conn.execute(sa.select(waiting_rooms.c.rate, waiting_rooms.c.burst)
                                ).one() == (0.5, 4)
        assert main(["--db", hub_url, "waiting-room", str(hub.session), "--rate", "0"]) == 0
        assert "waiting room off" in capsys.readouterr().out
        assert main(["--db", hub_url, "waiting-room", str(hub.session), "--hub-settings"]) == 0
        assert "waiting room 3 a second" in capsys.readouterr().out
        assert main(["--db", hub_url, "waiting-room", str(hub.session), "--rate", "-1"]) == 2
        assert "rate must be a number from 0" in capsys.readouterr().err
        assert main(["--db", hub_url, "waiting-room", str(hub.session + 5), "--rate", "1"]) == 2
        monkeypatch.setenv("WICKET_HUB_WAITING_ROOM_RATE", "fast")
        assert main(["--db", hub_url, "waiting-room", str(hub.session)]) == 2
    finally:
        hub.engine.dispose()
