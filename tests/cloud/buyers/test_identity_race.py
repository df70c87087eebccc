"""Two requests for the same person at the same moment make one identity and one job: on
PostgreSQL the second waits on the first's row and then reuses it (on SQLite the writers are
one at a time anyway)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from cloud.buyers.identities import request_verification
from cloud.buyers.tables import identities
from cloud.core.jobs import jobs
from tests.cloud.buyers.conftest import resident_id

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def _wait_until_blocked(engine: sa.Engine, deadline: float = 60.0) -> None:
    """Until another session of this database waits on a lock (the second request)."""
    end = time.monotonic() + deadline
    with engine.connect() as conn:
        while time.monotonic() < end:
            waiting = conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second request never waited on the first")


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_two_requests_for_one_person_at_once_make_one_identity_and_one_job(engine):
    number = resident_id()
    got: dict[str, object] = {}

    def second() -> None:
        try:
            with engine.begin() as conn:
                got["b"] = request_verification(conn, name="张三", doc_type="resident_id",
                                                number=number, now=NOW)
        except Exception as e:  # noqa: BLE001 - handed to the test's thread
            got["error"] = e

    with engine.connect() as first:
        first.begin()
        got["a"] = request_verification(first, name="张三", doc_type="resident_id",
                                        number=number, now=NOW)
        thread = threading.Thread(target=second)
        thread.start()
        try:
            _wait_until_blocked(engine)
        finally:
            first.commit()
        thread.join(60)
    assert "error" not in got, got.get("error")
    assert got["a"] == got["b"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(identities)).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 1
