"""A messenger killed mid-send loses no message and sends none twice: ``wicket-hub messenger``
as a real process, killed with SIGKILL while the gateway holds the answer to a batch it has
taken; a second messenger takes the batch again once the lease has passed, and the gateway
drops the copies by their delivery ids."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import sqlalchemy as sa

from cloud.core.db import init_db, make_engine
from cloud.core.outbox import enqueue, outbox
from tests.cloud.messaging.conftest import API_KEY, ROOT, stop

MESSAGES = 20
BATCH = 5


def messenger(hub_url: str, gateway_url: str, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cloud.cli", "--db", hub_url, "messenger", "--batch", str(BATCH),
         "--lease", "2", "--poll", "0.2"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
        env={**os.environ, "PYTHONPATH": str(ROOT), "WICKET_HUB_SMS_GATEWAY_URL": gateway_url,
             "WICKET_HUB_SMS_API_KEY": API_KEY})


def states(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(outbox.c.state, sa.func.count())
                                 .group_by(outbox.c.state)).all())


def test_a_messenger_killed_mid_send_loses_nothing_and_sends_nothing_twice(hub_url, gateway,
                                                                           tmp_path):
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        for i in range(MESSAGES):
            enqueue(conn, kind="sign_in_code", channel="sms", to=f"1380013{i:04d}",
                    params={"code": f"{i:06d}", "minutes": 5})
    gateway.control("POST", "/_sandbox/faults", json={"faults": ["hold"]})
    with (tmp_path / "first.log").open("wb") as log:
        first = messenger(hub_url, gateway.url, log)
    try:
        gateway.wait(count=BATCH)   # the first batch is taken; its answer is held
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        stop(first)
    gateway.control("POST", "/_sandbox/release")
    assert states(engine) == {"waiting": MESSAGES}   # nothing was recorded as sent
    with (tmp_path / "second.log").open("wb") as log:
        second = messenger(hub_url, gateway.url, log)
    try:
        deadline = time.monotonic() + 120
        while states(engine) != {"sent": MESSAGES} and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop(second)
    assert states(engine) == {"sent": MESSAGES}, (tmp_path / "second.log").read_text()
    seen = gateway.control("GET", "/_sandbox/received")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.delivery_id, outbox.c.attempts)).all()
    engine.dispose()
    received = {r["delivery_id"]: r for r in seen["received"]}
    assert set(received) == {r.delivery_id for r in rows}      # every message, once each
    assert len(seen["received"]) == MESSAGES
    assert seen["duplicates"] == BATCH                          # the killed batch's copies
    assert sorted(r["sends"] for r in received.values()) == [1] * 15 + [2] * BATCH
    assert sorted(r.attempts for r in rows) == [1] * 15 + [2] * BATCH
