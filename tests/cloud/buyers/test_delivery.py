"""A buyer's paid order reaches the buyer: the capture writes a job, the job writes one
message per ticket to the buyer's mobile and e-mail with a link to the ticket, once; a booth's
order (no buyer account) writes no job."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cloud.buyers import accounts
from cloud.buyers.delivery import deliver_paid_order
from cloud.core.jobs import jobs
from cloud.core.outbox import opened, outbox
from cloud.messaging.tables import ticket_links
from cloud.payments.capturing import place
from cloud.payments.checkout import start_payment
from cloud.payments.offline import OfflineProvider
from cloud.sales.order_plan import LineRequest, OrderRequest
from cloud.sales.orders import DELIVER_TICKETS_JOB, create_order, payable
from tests.cloud.buyers.buyerkit import MOBILE, NOW, new_buyer
from tests.cloud.orderkit import build


@pytest.fixture
def hub(hub_url, key_store):
    h = build(hub_url)
    yield h
    h.engine.dispose()


def _paid(hub, buyer: str | None, seats: tuple[int, ...]) -> int:
    lines = tuple(LineRequest(seat_id=hub.seat("A", "2", n), price_tier_id=hub.std)
                  for n in seats)
    with hub.engine.begin() as conn:
        made = create_order(conn, OrderRequest(hub.session, lines, buyer=buyer), NOW)
        due = payable(conn, made.order_id)
        started = start_payment(conn, OfflineProvider(), made.order_id, due.amount,
                                due.description, due.expires_at, NOW)
        assert place(conn, started.outcome, NOW).state == "paid"
        return made.order_id


def _jobs(hub) -> list:
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(jobs.c.payload).where(
            jobs.c.kind == DELIVER_TICKETS_JOB)).scalars().all()


def test_a_buyers_paid_order_sends_each_ticket_to_the_buyer_once(hub):
    buyer_id = new_buyer(hub.engine)
    with hub.engine.begin() as conn:
        accounts.set_email(conn, buyer_id, "Buyer@Example.com")
        accounts.set_language(conn, buyer_id, "en")
    order_id = _paid(hub, f"buyer:{buyer_id}", (1, 2))
    assert _jobs(hub) == [{"order_id": order_id}]
    for _ in range(2):  # a job run again writes nothing twice
        with hub.engine.begin() as conn:
            deliver_paid_order(conn, {"order_id": order_id}, NOW)
    with hub.engine.connect() as conn:
        sent = conn.execute(sa.select(outbox).where(outbox.c.kind == "ticket_delivery")
                            .order_by(outbox.c.id)).all()
        addressed = sorted((r.channel, opened(conn, r)[0], r.language) for r in sent)
        assert addressed == [("email", "buyer@example.com", "en")] * 2 + [
            ("sms", MOBILE, "en")] * 2
        assert all(MOBILE not in r.dedupe_key and "example" not in r.dedupe_key for r in sent)
        assert conn.execute(sa.select(sa.func.count()).select_from(ticket_links)).scalar() == 2


def test_a_booth_order_writes_no_delivery(hub):
    _paid(hub, None, (3,))
    assert _jobs(hub) == []
