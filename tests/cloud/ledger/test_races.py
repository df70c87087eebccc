"""Writers racing on both databases, each thread on its own connection: many orders taking
from one prepaid balance at once never overdraw it (the conditional UPDATE in the posting
transaction decides, never a read), and an event posted by several writers at once posts
once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from cloud.core.db import init_db, make_engine
from cloud.core.errors import HubError
from cloud.ledger import chart
from cloud.ledger.journal import Leg, available, balance, open_account, post, trial_balance
from cloud.ledger.tables import ledger_entries

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
WRITERS = 12
PREPAID = "prepaid:7"


@pytest.fixture
def engine(hub_url):
    init_db(hub_url)
    engine = make_engine(hub_url)
    with engine.begin() as conn:
        open_account(conn, PREPAID, "Distributor 7: prepaid", "liability", guarded=True,
                     now=NOW)
        chart.ensure(conn, chart.BANK, now=NOW)
        chart.ensure(conn, chart.PLATFORM_REVENUE, now=NOW)
        post(conn, "topup:7", "topup", [Leg(chart.BANK, 1000, "bank"),
                                        Leg(PREPAID, -1000, "prepaid")], now=NOW)
    yield engine
    engine.dispose()


def race(engine, keys: list[str], amount: int) -> Counter:
    """Each key's entry (``amount`` from the prepaid balance to revenue) posted by its own
    thread, all starting together; the outcome of each."""
    results: list[str] = []
    barrier = threading.Barrier(len(keys))

    def one(key: str) -> None:
        barrier.wait()
        try:
            with engine.begin() as conn:
                done = post(conn, key, "order", [Leg(PREPAID, amount, "prepaid"),
                                                 Leg(chart.PLATFORM_REVENUE, -amount,
                                                     "platform")], now=NOW)
            results.append("replayed" if done.replayed else "ok")
        except HubError as e:
            results.append(e.code)
        except Exception as e:  # noqa: BLE001 - an outcome, so the comparison shows it
            results.append(f"unexpected:{type(e).__name__}: {e}")

    threads = [threading.Thread(target=one, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(results)


def test_orders_racing_on_one_prepaid_balance_never_overdraw_it(engine):
    outcomes = race(engine, [f"order:{n}" for n in range(WRITERS)], 300)
    assert outcomes == Counter({"ok": 3, "insufficient_funds": WRITERS - 3})
    with engine.connect() as conn:
        assert balance(conn, PREPAID) == 100 == available(conn, PREPAID)
        assert trial_balance(conn) == {"CNY": 0}


def test_one_event_posted_by_racing_writers_posts_once(engine):
    outcomes = race(engine, ["order:same"] * WRITERS, 100)
    assert outcomes["ok"] == 1 and outcomes["ok"] + outcomes["replayed"] == WRITERS, outcomes
    with engine.connect() as conn:
        assert balance(conn, PREPAID) == 900
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger_entries)
                            .where(ledger_entries.c.key == "order:same")).scalar() == 1
