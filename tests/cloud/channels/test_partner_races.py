"""Twenty partners ordering at once, each on its own connection, on both databases: against
one day's stock, each against its own channel's quota and its own prepaid balance. Never
oversold, never over a channel's quota, never overdrawn; the ledger balances and every
partner's charges are exactly its tickets at its agreed price."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from cloud.channels import ordering
from cloud.channels.accounts import balances
from cloud.channels.channels import set_channel_quota
from cloud.channels.ordering import PartnerLine
from cloud.core.errors import HubError
from cloud.inventory.quotas import quota_key, set_capacity
from cloud.inventory.tables import quotas
from cloud.ledger.journal import trial_balance
from cloud.sales.tables import orders, tickets
from tests.cloud.channels.channelkit import TODAY, channel_hub, distributor
from tests.cloud.orderkit import NOW

PARTNERS = 20
ROUNDS = 3  # orders each partner tries, one ticket each
PRICE = 10000
STOCK = 30  # of the 60 tickets asked for


@pytest.fixture
def kit(hub_url, key_store):
    k = channel_hub(hub_url)
    yield k
    k.engine.dispose()


def test_partners_racing_never_oversell_the_day_nor_overdraw_their_accounts(kit):
    members = []
    with kit.engine.begin() as conn:
        day = conn.execute(sa.select(quotas.c.id).where(quotas.c.key == quota_key(
            "day", product_id=kit.day_ticket, day=TODAY))).scalar_one()
        set_capacity(conn, day, STOCK)
        for i in range(PARTNERS):
            # even partners can pay for two tickets, odd ones for three but their channel
            # takes two
            partner, channel = distributor(conn, kit, f"D{i:02d}",
                                           prepaid=PRICE * (2 if i % 2 == 0 else 3))
            if i % 2:
                set_channel_quota(conn, channel, 2, product_id=kit.day_ticket, day=TODAY,
                                  actor="t", now=NOW)
            members.append((partner, channel))
    results: list[str] = []
    barrier = threading.Barrier(PARTNERS)

    def order(partner: int, channel: int) -> None:
        barrier.wait()
        for _ in range(ROUNDS):
            try:
                with kit.engine.begin() as conn:
                    ordering.place_order(conn, partner_id=partner, channel_id=channel,
                                         lines=[PartnerLine(product_id=kit.day_ticket,
                                                            day=TODAY)],
                                         confirm=True, actor="t", now=NOW)
                results.append("ok")
            except HubError as e:
                results.append(e.code)
            except Exception as e:  # noqa: BLE001 - an outcome, so the comparison shows it
                results.append(f"unexpected:{type(e).__name__}: {e}")

    threads = [threading.Thread(target=order, args=m) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcome = Counter(results)
    assert set(outcome) <= {"ok", "not_covered", "sold_out"}, outcome
    with kit.engine.connect() as conn:
        sold = conn.execute(sa.select(sa.func.count()).select_from(tickets)
                            .where(tickets.c.state == "issued")).scalar()
        used = conn.execute(sa.select(quotas.c.used).where(quotas.c.id == day)).scalar()
        per_partner = {}
        for partner, channel in members:
            n = conn.execute(sa.select(sa.func.count()).select_from(tickets).join(
                orders, orders.c.id == tickets.c.order_id).where(
                orders.c.channel_id == channel)).scalar()
            per_partner[partner] = (n, balances(conn, partner)["prepaid"])
        assert set(trial_balance(conn).values()) <= {0}
    assert sold == outcome["ok"] == used <= STOCK
    for i, (partner, _) in enumerate(members):
        n, left = per_partner[partner]
        assert n <= 2 and left >= 0  # its channel's quota, or its money
        assert left == PRICE * (2 if i % 2 == 0 else 3) - n * PRICE
    # 20 partners × at most 2 = 40 wanted, 30 in stock: the stock decides
    assert sold == STOCK
