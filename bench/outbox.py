"""Sending the outbox: messages through the sandbox SMS gateway (``wicket-hub sms-sandbox``)
by ``wicket-hub messenger`` processes, on PostgreSQL, on this machine.

- ``enqueue_per_s``: messages written to the outbox (sealed, in transactions of 100).
- ``messages_per_s``: messages sent and recorded per second by 2 messengers at once, from the
  first batch recorded to the last (process start-up is not counted), each messenger taking
  batches of ``--batch`` with ``FOR UPDATE SKIP LOCKED`` and one kept connection to the gateway.
- ``twice``: messages the gateway received more than once (must be 0).

    .venv/bin/python bench/outbox.py [--messages 20000] [--workers 2] [--batch 200]

The database is made on $WICKET_TEST_PG (an admin URL; default the test cluster's) and dropped
at the end. Target (issue 16): messages_per_s >= 500 with 2 workers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from benchkit import free_port, note, scratch_hub  # noqa: E402

from cloud.core.db import init_db, make_engine  # noqa: E402
from cloud.core.outbox import enqueue, outbox  # noqa: E402

API_KEY = uuid.uuid4().hex
TIMEOUT = 600


def fill(engine: sa.Engine, n: int) -> float:
    """``n`` sign-in codes to distinct numbers; messages written per second."""
    started = time.monotonic()
    for first in range(0, n, 100):
        with engine.begin() as conn:
            for i in range(first, min(n, first + 100)):
                enqueue(conn, kind="sign_in_code", channel="sms", to=f"139{i:08d}",
                        params={"code": f"{i % 1000000:06d}", "minutes": 5})
    return n / (time.monotonic() - started)


def wait_answering(url: str) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def measure(url: str, args) -> None:
    init_db(url)
    engine = make_engine(url)
    note(f"writing {args.messages} messages")
    print(f"enqueue_per_s: {fill(engine, args.messages):.0f}")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WICKET_HUB_SMS_API_KEY": API_KEY,
           "WICKET_HUB_SMS_GATEWAY_URL": f"http://127.0.0.1:{port}"}
    procs = [subprocess.Popen([sys.executable, "-m", "cloud.cli", "sms-sandbox", "--port",
                               str(port)], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)]
    try:
        wait_answering(f"http://127.0.0.1:{port}/_sandbox/health")
        note(f"{args.workers} messengers sending")
        procs += [subprocess.Popen(
            [sys.executable, "-m", "cloud.cli", "--db", url, "messenger", "--batch",
             str(args.batch), "--poll", "0.2"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
            for _ in range(args.workers)]
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            with engine.connect() as conn:
                left = conn.execute(sa.select(sa.func.count()).where(
                    outbox.c.state != "sent")).scalar()
            if not left:
                break
            time.sleep(0.2)
        with engine.connect() as conn:
            first, last, sent = conn.execute(sa.select(
                sa.func.min(outbox.c.sent_at), sa.func.max(outbox.c.sent_at),
                sa.func.count()).where(outbox.c.state == "sent")).one()
            first_batch = conn.execute(sa.select(sa.func.count()).where(
                outbox.c.sent_at == first)).scalar()
        seen = requests.get(f"http://127.0.0.1:{port}/_sandbox/received", timeout=60).json()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        engine.dispose()
    span = (last - first).total_seconds()
    print(f"messages_per_s: {(sent - first_batch) / span:.0f}" if span > 0 else
          "messages_per_s: n/a")
    print(f"sent: {sent} of {args.messages}")
    print(f"twice: {sum(1 for r in seen['received'] if r['sends'] > 1)}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=200)
    args = p.parse_args()
    with scratch_hub("wicket-bench-outbox") as url:
        measure(url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
