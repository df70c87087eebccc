"""``wicket-hub worker`` verifies identities through the sandbox service, both real processes:
the worker registers the job when the service is configured, asks it with no transaction open
and retries a refusal to answer, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import sqlalchemy as sa

from cloud.buyers.identities import VERIFY_JOB, request_verification
from cloud.buyers.tables import identities
from cloud.cli import worker_tasks
from cloud.core.jobs import jobs
from tests.cloud.buyers.conftest import resident_id


def test_the_worker_registers_verification_only_with_a_service(idcheck, monkeypatch):
    tasks = worker_tasks()
    assert VERIFY_JOB not in tasks.handlers      # no service: the jobs wait for one
    assert "delete_reviewed_photos" in {p.name for p in tasks.periodic}
    for name, value in idcheck.settings.items():
        monkeypatch.setenv(f"WICKET_HUB_{name}", value)
    assert VERIFY_JOB in worker_tasks().apart


def test_the_worker_process_verifies_through_the_sandbox_process(engine, hub_url, idcheck,
                                                                 tmp_path):
    number = resident_id()
    idcheck.script(number, "error")      # the first call is refused: the job backs off...
    with engine.begin() as conn:
        identity_id = request_verification(conn, name="张三", doc_type="resident_id",
                                           number=number)
    env = {**os.environ, **{f"WICKET_HUB_{k}": v for k, v in idcheck.settings.items()}}
    with (tmp_path / "worker.log").open("wb") as err:
        worker = subprocess.Popen([sys.executable, "-m", "cloud.cli", "--db", hub_url, "worker",
                                   "--poll", "0.1"], env=env, stderr=err)
    try:
        deadline, failed = time.monotonic() + 60, None
        while time.monotonic() < deadline and not failed:
            with engine.connect() as conn:
                failed = conn.execute(sa.select(jobs.c.last_error)).scalar()
            time.sleep(0.1)
        assert failed and "HTTP 503" in failed, (tmp_path / "worker.log").read_text()
        with engine.connect() as conn:
            assert conn.execute(sa.select(identities.c.state)).scalar() == "pending"
        # ...so the test makes it due at once rather than wait ten seconds
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE jobs SET run_after = created_at"))
        state = "pending"
        while time.monotonic() < deadline and state != "verified":
            with engine.connect() as conn:
                state = conn.execute(sa.select(identities.c.state).where(
                    identities.c.id == identity_id)).scalar()
            time.sleep(0.1)
        assert state == "verified", (tmp_path / "worker.log").read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert worker.returncode == 0
    assert [c["behaviour"] for c in idcheck.calls(number)] == ["error", "match"]
