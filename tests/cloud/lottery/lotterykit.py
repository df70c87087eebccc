"""What the lottery's rule tests share: the public site's shop (a session with a VIP tier of
6 seats and a standard tier of 9 free seats), a presale over that session's two tiers, buyers
with verified identities and companions, and applications paid at a booth's till (the offline
provider: paid in the one transaction, refunded at once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from cloud.buyers import companions as comp
from cloud.buyers.own_identity import verify_buyer
from cloud.lottery import applying, drawing, freezing, presales
from cloud.payments.capturing import place
from cloud.payments.checkout import start_payment
from cloud.payments.offline import OfflineProvider
from cloud.sales.tables import orders
from sync.timeutil import utcnow
from tests.cloud.buyers.buyerkit import ask, last_code, mark_verified
from tests.cloud.buyers.conftest import resident_id

STAFF, CHECKER = "staff:1", "staff:2"
SEED = "428913 (notary, hall B)"


@dataclass
class Presale:
    id: int
    vip: int  # lot ids
    std: int
    opens: datetime
    closes: datetime

    @property
    def during(self) -> datetime:
        return self.opens + timedelta(minutes=5)

    @property
    def after(self) -> datetime:
        return self.closes + timedelta(minutes=1)


def make_presale(shop, vip_tickets: int = 4, std_tickets: int = 6, **settings) -> Presale:
    opens = utcnow() - timedelta(days=1)
    closes = utcnow() + timedelta(days=1)
    with shop.engine.begin() as conn:
        pid = presales.create_presale(conn, event_id=shop.event, name="Final presale",
                                      opens_at=opens, closes_at=closes, actor=STAFF,
                                      **settings)
        vip = presales.add_lot(conn, pid, shop.final, shop.vip, vip_tickets, STAFF)
        std = presales.add_lot(conn, pid, shop.final, shop.std, std_tickets, STAFF)
        presales.open_presale(conn, pid, STAFF)
    return Presale(pid, vip, std, opens, closes)


def new_buyer(engine: sa.Engine, i: int) -> int:
    """A buyer (mobile 1390000<i>) whose own identity is verified."""
    from cloud.buyers import accounts, codes
    from tests.cloud.buyers.buyerkit import NOW

    mobile = f"139{i:08d}"
    ask(engine, "register", mobile, NOW, address=f"198.51.{i // 250}.{i % 250}")
    code = last_code(engine, mobile)
    codes.check_code(engine, mobile=mobile, purpose="register", code=code, now=NOW)
    with engine.begin() as conn:
        buyer_id = accounts.register(conn, mobile=mobile, code=code, now=NOW)
        identity, _ = verify_buyer(conn, buyer_id, name=f"Buyer {i}", doc_type="resident_id",
                                   number=resident_id())
    mark_verified(engine, identity)
    return buyer_id


def companion(engine: sa.Engine, buyer_id: int, verified: bool = True) -> str:
    with engine.begin() as conn:
        c = comp.add_companion(conn, buyer_id, name="Han Meimei", doc_type="resident_id",
                               doc_number=resident_id(), limit=10)
    if verified:
        mark_verified(engine, c.identity_id)
    return f"c{c.id}"


def holders(conn, buyer_id: int, keys: list[str]) -> list[tuple[str, tuple[str, str, str]]]:
    return applying.named_holders(conn, buyer_id, keys)


def apply(engine: sa.Engine, p: Presale, lot: int, buyer_id: int, keys: list[str],
          now: datetime | None = None) -> applying.Applied:
    with engine.begin() as conn:
        return applying.apply(conn, p.id, lot, len(keys), f"buyer:{buyer_id}",
                              holders(conn, buyer_id, keys), now=now or p.during)


def pay(engine: sa.Engine, applied: applying.Applied, now: datetime | None = None) -> str:
    """Pay the application's order at the till (by default a minute before its deadline);
    the order's state after."""
    now = now or applied.expires_at - timedelta(minutes=1)
    with engine.begin() as conn:
        started = start_payment(conn, OfflineProvider(), applied.order_id, applied.amount,
                                "presale", applied.expires_at, now)
        place(conn, started.outcome, now)
        return conn.execute(sa.select(orders.c.state).where(
            orders.c.id == applied.order_id)).scalar_one()


def freeze_and_seed(engine: sa.Engine, p: Presale, seed: str = SEED) -> str:
    with engine.begin() as conn:
        digest = freezing.freeze(conn, p.id, STAFF, now=p.after)
    for actor in (STAFF, CHECKER):
        with engine.begin() as conn:
            freezing.enter_seed(conn, p.id, actor, seed, now=p.after)
    return digest


def draw(engine: sa.Engine, p: Presale, window: timedelta = timedelta(days=2)) -> str:
    with engine.begin() as conn:
        return drawing.run_draw(conn, p.id, STAFF, p.after + window, now=p.after)
