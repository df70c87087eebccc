"""Companions are holders to the orders: the limit per holder per session counts a companion
whichever account buys for them, and a companion removed keeps the tickets bought for them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.buyers import companions as comp
from cloud.buyers.errors import BuyerError
from cloud.inventory.sessions import edit_session
from cloud.sales.holders import holder as open_holder
from cloud.sales.order_plan import LineRequest, OrderError, OrderRequest
from cloud.sales.orders import capture, create_order
from cloud.sales.tables import orders, tickets
from tests.cloud.buyers.buyerkit import mark_verified, new_buyer
from tests.cloud.buyers.test_companions import resident_id
from tests.cloud.orderkit import NOW, build


@pytest.fixture
def hub(hub_url, key_store):
    h = build(hub_url)
    yield h
    h.engine.dispose()


def _buy(hub, buyer_id: int, companion_id: int, seat: int, pay: bool = False):
    seat_id = hub.seat("A", "2", seat)
    with hub.engine.begin() as conn:
        line = LineRequest(seat_id=seat_id, price_tier_id=hub.std,
                           holder=comp.holder(conn, buyer_id, companion_id))
        made = create_order(conn, OrderRequest(hub.session, (line,), buyer=f"buyer:{buyer_id}"),
                            NOW)
        if pay:
            capture(conn, made.order_id, made.total, "wechat", f"tx-{seat}", NOW)
        return made


def test_a_companion_reaches_the_holder_limit_through_two_accounts(hub):
    with hub.engine.begin() as conn:
        edit_session(conn, hub.session, holder_limit=2)
    first, second = new_buyer(hub.engine), new_buyer(hub.engine, "13900139000")
    person = ("张小三", "resident_id", resident_id(50))
    with hub.engine.begin() as conn:
        added = [comp.add_companion(conn, b, name=person[0], doc_type=person[1],
                                    doc_number=person[2], now=NOW) for b in (first, second)]
    ids = [a.id for a in added]
    # one person, one identity, whichever account added them; nothing is bought for them
    # until it is verified
    assert added[0].identity_id == added[1].identity_id and added[0].verification == "pending"
    with pytest.raises(BuyerError) as unverified:
        _buy(hub, first, ids[0], 1)
    assert unverified.value.code == "companion_not_verified"
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == 0
    mark_verified(hub.engine, added[0].identity_id)
    _buy(hub, first, ids[0], 1)
    _buy(hub, second, ids[1], 2)
    with pytest.raises(OrderError) as e:
        _buy(hub, second, ids[1], 3)
    assert (e.value.code, e.value.params["per"]) == ("limit_reached", "holder per session")
    # nobody buys for another account's companion
    with hub.engine.begin() as conn, pytest.raises(BuyerError) as refused:
        comp.holder(conn, first, ids[1])
    assert refused.value.code == "unknown_companion"


def test_a_removed_companion_keeps_the_tickets_bought_for_them(hub):
    buyer_id = new_buyer(hub.engine)
    with hub.engine.begin() as conn:
        companion = comp.add_companion(conn, buyer_id, name="李四", doc_type="resident_id",
                                       doc_number=resident_id(51), now=NOW)
    mark_verified(hub.engine, companion.identity_id)
    _buy(hub, buyer_id, companion.id, 4, pay=True)
    with hub.engine.begin() as conn:
        comp.remove_companion(conn, buyer_id, companion.id, NOW)
        [ticket] = conn.execute(sa.select(tickets.c.state, tickets.c.holder_id)).all()
        kept = open_holder(conn, ticket.holder_id)
    assert ticket.state == "issued"
    assert (kept.name, kept.doc_number) == ("李四", resident_id(51))


def test_a_buyer_names_their_own_identity_once_verified(hub):
    from cloud.buyers.accounts import profile
    from cloud.buyers.own_identity import verify_buyer
    from cloud.core.jobs import jobs
    from tests.cloud.buyers.buyerkit import sent

    buyer_id = new_buyer(hub.engine)
    with hub.engine.begin() as conn:
        identity_id, state = verify_buyer(conn, buyer_id, name="王五", doc_type="resident_id",
                                          number=resident_id(52), now=NOW)
        assert state == "pending" and profile(conn, buyer_id).identity_id == identity_id
        assert profile(conn, buyer_id).masked().verification == "pending"
        # the check is a job for the worker; its result goes to the buyer's own mobile
        [job] = conn.execute(sa.select(jobs.c.kind, jobs.c.payload)).all()
        assert job.kind == "verify_identity" and "13800138000" not in str(job.payload)
    mark_verified(hub.engine, identity_id)
    with hub.engine.begin() as conn, pytest.raises(BuyerError) as again:
        verify_buyer(conn, buyer_id, name="王五", doc_type="resident_id",
                     number=resident_id(53), now=NOW)
    assert again.value.code == "buyer_already_verified"
    assert [kind for kind, _ in sent(hub.engine)] == ["register_code"]
