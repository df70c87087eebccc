"""One answer lost on the way must not lose what it carried, nor lock the appliance out.

Found with the fault proxy: the hub marked a command delivered when it answered the heartbeat,
so a wipe whose answer was lost never happened (now commands are handed over until the
appliance confirms them); and a lost answer to a credential roll left the appliance with a
credential the hub no longer took (now the appliance names the new credential, written down
before it is sent)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.fleet import appliances
from cloud.fleet.tables import appliance_commands
from tests.faults.run import World

HEARTBEAT = "/api/sync/v1/heartbeat"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("lost"), seed=2)
    yield w
    w.close()


def _queue(w, command) -> int:
    with w.hub.engine.begin() as conn:
        appliances.queue_command(conn, w.hub.appliance_id, command)
        return conn.execute(sa.select(sa.func.max(appliance_commands.c.id))).scalar()


def _delivered(w, command_id):
    with w.hub.engine.connect() as conn:
        return conn.execute(sa.select(appliance_commands.c.delivered_at)
                            .where(appliance_commands.c.id == command_id)).scalar()


def test_a_resync_whose_heartbeat_answer_was_lost_still_happens(world):
    command_id = _queue(world, "resync")
    world.proxy.force("drop_response", HEARTBEAT)
    first = world.edge.sync_once()
    assert first.returncode == 3, first.output  # the heartbeat failed: try again later
    assert world.edge.status()["last_snapshot_at"] is None
    assert _delivered(world, command_id) is None
    second = world.edge.sync_once()
    assert second.returncode == 0, second.output
    assert world.edge.status()["last_snapshot_at"] is not None
    assert _delivered(world, command_id) is None  # done, confirmed in the next heartbeat
    third = world.edge.sync_once()
    assert third.returncode == 0, third.output
    assert _delivered(world, command_id) is not None
    snapshot_at = world.edge.status()["last_snapshot_at"]
    assert world.edge.sync_once().returncode == 0
    assert world.edge.status()["last_snapshot_at"] == snapshot_at  # carried out once


def test_a_credential_roll_whose_answer_was_lost_does_not_lock_the_appliance_out(world):
    _queue(world, "roll_credential")
    world.proxy.force("drop_response", "/api/sync/v1/roll")
    first = world.edge.sync_once()
    assert first.returncode == 3, first.output
    for _ in range(2):  # the roll is carried out again, then confirmed
        r = world.edge.sync_once()
        assert r.returncode == 0, r.output
    status = world.edge.status()
    assert status["revoked_at"] is None and status["enrolled"]
    conn = world.edge.connect()
    try:
        assert conn.execute("SELECT count(*) FROM holders").fetchone()[0] > 0
    finally:
        conn.close()


def test_a_wipe_whose_heartbeat_answer_was_lost_still_happens(world):
    conn = world.edge.connect()
    try:
        assert conn.execute("SELECT count(*) FROM holders").fetchone()[0] > 0
    finally:
        conn.close()
    _queue(world, "wipe")
    world.proxy.force("drop_response", HEARTBEAT)
    assert world.edge.sync_once().returncode == 3
    r = world.edge.sync_once()
    assert r.returncode == 4, r.output  # wiped, and says so
    conn = world.edge.connect()
    try:
        assert conn.execute("SELECT count(*) FROM holders").fetchone()[0] == 0
    finally:
        conn.close()
    assert world.edge.status()["revoked_at"] is not None
