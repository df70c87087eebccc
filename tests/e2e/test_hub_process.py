"""The hub as a real process behind its production WSGI server, spoken to over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from cloud.catalog.events import create_event
from cloud.catalog.venues import create_venue
from cloud.core.db import init_db, make_engine
from cloud.fleet import appliances
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory.sessions import create_session
from cloud.sales.tickets import issue_ticket
from sync.timeutil import utcnow

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving_hub(url: str):
    """``wicket-hub serve --workers 2`` on ``url`` as a process, once its sign-in page answers:
    (its address, the process; its output on ``stdout``); asked to stop at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "WICKET_HUB_SECRET"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud.cli", "--db", url, "serve", "--bind", f"127.0.0.1:{port}",
         "--workers", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**env, "PYTHONPATH": str(ROOT)}, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{base}/login", timeout=5)
            break
        except (requests.ConnectionError, requests.Timeout):  # not listening, or still booting
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.1)
    try:
        yield base, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()


@pytest.fixture
def hub_process(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    init_db(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        event = create_event(conn, "GAMES", "The Games")
        start = utcnow() + timedelta(hours=1)
        session = create_session(conn, event, venue, "Opening", start, start + timedelta(hours=2))
        issued = [issue_ticket(conn, session_id=session) for _ in range(3)]
        token = appliances.register(conn, venue, "Gate box").token
    engine.dispose()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud.cli", "--db", url, "serve", "--bind", f"127.0.0.1:{port}",
         "--workers", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)
    base = f"http://127.0.0.1:{port}/api/sync/v1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.post(f"{base}/heartbeat", json={}, timeout=5)
            break
        except (requests.ConnectionError, requests.Timeout):  # not listening, or still booting
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.1)
    yield base, token, issued, proc
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    proc.stdout.close()


def test_enroll_and_pull_over_http_then_stop_cleanly(hub_process):
    base, token, issued, proc = hub_process
    r = requests.post(f"{base}/enroll", json={"token": token}, timeout=10)
    assert r.status_code == 201
    credential = r.json()["credential"]
    r = requests.get(f"{base}/allowlist", params={"since": 0},
                     headers={"Authorization": f"Appliance {credential}"}, timeout=10)
    assert r.status_code == 200
    numbers = {c["number"] for c in r.json()["changes"] if c["type"] == "ticket"}
    assert numbers == {t.number for t in issued}
    assert requests.get(f"{base}/allowlist", timeout=10).status_code == 401
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_serve_refuses_a_database_that_was_never_initialised(tmp_path):
    r = subprocess.run([sys.executable, "-m", "cloud.cli", "--db",
                        f"sqlite:///{tmp_path / 'none.db'}", "serve"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "wicket-hub init" in r.stderr
