"""Applications racing on both databases, each thread on its own connection: a buyer's limit
and one document per session hold when many applications of one buyer, or for one person,
arrive at once — each decided by one statement, never a read."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from cloud.core.errors import HubError
from cloud.lottery import applying
from cloud.lottery.tables import presale_applications, presale_counts, presale_holders
from tests.cloud.lottery import lotterykit as kit
from tests.cloud.storefront.shopkit import build_shop

THREADS = 8


@pytest.fixture
def shop(hub_url, key_store):
    s = build_shop(hub_url)
    yield s
    s.engine.dispose()


def race(shop, p, asks) -> Counter:
    """Each ask (lot, buyer id, holders) applied by its own thread, all starting together;
    the outcome of each: 'ok', the refusal's code, or ``unexpected:…``."""
    results: list[str] = []
    barrier = threading.Barrier(len(asks))

    def one(lot, buyer_id, people) -> None:
        barrier.wait()
        try:
            with shop.engine.begin() as conn:
                applying.apply(conn, p.id, lot, len(people), f"buyer:{buyer_id}", people,
                               now=p.during)
            results.append("ok")
        except HubError as e:
            results.append(e.code)
        except Exception as e:  # noqa: BLE001 - an outcome, so the comparison shows it
            results.append(f"unexpected:{type(e).__name__}: {e}")

    threads = [threading.Thread(target=one, args=a) for a in asks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(results)


def test_a_buyers_limit_holds_when_their_applications_race(shop):
    p = kit.make_presale(shop, buyer_limit=3)
    buyer = kit.new_buyer(shop.engine, 70)
    keys = [kit.companion(shop.engine, buyer) for _ in range(THREADS)]
    with shop.engine.connect() as conn:
        people = [kit.holders(conn, buyer, [k]) for k in keys]
    got = race(shop, p, [(p.std if i % 2 else p.vip, buyer, people[i])
                         for i in range(THREADS)])
    assert got == Counter({"ok": 3, "buyer_limit_reached": THREADS - 3})
    with shop.engine.connect() as conn:
        used = conn.execute(sa.select(presale_counts.c.used)).scalar_one()
        applied = conn.execute(sa.select(sa.func.count()).select_from(
            presale_applications)).scalar_one()
    assert used == applied == 3


def test_one_document_per_session_holds_when_applications_for_one_person_race(shop):
    p = kit.make_presale(shop)
    buyer = kit.new_buyer(shop.engine, 71)
    with shop.engine.connect() as conn:
        me = kit.holders(conn, buyer, ["me"])
    got = race(shop, p, [(p.std if i % 2 else p.vip, buyer, me) for i in range(THREADS)])
    assert got == Counter({"ok": 1, "holder_already_applied": THREADS - 1})
    with shop.engine.connect() as conn:
        live = conn.execute(sa.select(sa.func.count()).select_from(presale_holders).where(
            presale_holders.c.live)).scalar_one()
    assert live == 1
