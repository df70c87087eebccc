"""The demo's sale: the evening session put on sale, the payment sandbox playing WeChat Pay for
the hub (``wicket-hub payments-sandbox``, one more process), and simulated buyers who order
seats through the hub's order API and pay on the sandbox's pay page, as a buyer who scanned
the QR code would. The hub and its ``wicket-hub worker`` are started with the settings that
point the WeChat adapter at the sandbox (:meth:`Shop.hub_settings`); the order is paid when the
sandbox's signed notification reaches the hub, and ``orders_paid`` in the summary is counted
from the hub's database.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
import sqlalchemy as sa

from tools.demo.children import free_port, password

PROVIDER = "wechat"      # the one online provider the demo sells through
SESSION = 1              # the second of the demo event's sessions (the evening final)
ZONE = "E1"              # nobody holds a ticket there yet
TIERS = (("A", "Rows 1-20", 58_000, "a"), ("B", "Rows 21-50", 38_000, "b"))
BUY_EVERY_S = 3.0
SOLD_OUT = {"sold_out", "no_adjacent_seats"}   # the zone's rows 21-50 (1,500 seats) are sold
TIMEOUT_S = 30.0


@dataclass
class Sale:
    """What the buyers need: the session on sale, the zone and tier they ask for, and the
    API token of the till they buy through (made for the run, kept in memory only)."""

    session_id: int
    zone_id: int
    tier_id: int
    token: str


@dataclass
class Shop:
    directory: Path                 # demo/payments: the merchant's keys, what the sandbox published
    log_path: Path
    port: int = field(default_factory=free_port)
    keys: str = ""                  # what `wicket-hub payments-keys` printed: the settings
    sale: Sale | None = None
    buyers: Buyers | None = None

    @property
    def merchant(self) -> Path:
        return self.directory / "merchant"

    @property
    def published(self) -> Path:
        return self.directory / "sandbox"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sandbox_args(self) -> list[str]:
        """``wicket-hub`` arguments of the sandbox process."""
        return ["payments-sandbox", "--port", str(self.port), "--hub-keys",
                str(self.merchant / "public"), "--publish", str(self.published)]

    def answers(self) -> bool:
        if not (self.published / "sandbox.json").exists():
            return False
        try:
            return requests.get(f"{self.url}/_sandbox/health", timeout=2).ok
        except (requests.ConnectionError, requests.Timeout):  # still starting
            return False

    def hub_settings(self, hub_url: str) -> dict[str, str]:
        """The environment of the hub and its worker: WeChat Pay is the sandbox."""
        from cloud.payments.keys import sandbox_settings

        settings = dict(line.split("=", 1) for line in self.keys.splitlines() if "=" in line)
        settings.update({f"WICKET_HUB_{k}": v
                         for k, v in sandbox_settings(self.published).items()})
        settings.update({"WICKET_HUB_PAYMENT_PROVIDERS": f"offline,{PROVIDER}",
                         "WICKET_HUB_PUBLIC_URL": hub_url})
        return settings

    def open_sale(self, engine_factory: Callable[[], sa.Engine]) -> None:
        """The evening session priced by seat category and put on sale, and a till's API
        token for the buyers, as a sales manager sets them up on the hub's pages."""
        from cloud.catalog.events import add_price_tier
        from cloud.catalog.tables import sessions, zones
        from cloud.inventory import seats as inventory
        from cloud.staff.staff import create_staff
        from cloud.staff.tokens import create_token

        engine = engine_factory()
        try:
            with engine.begin() as conn:
                session_id = conn.execute(sa.select(sessions.c.id).order_by(sessions.c.id)
                                          ).scalars().all()[SESSION]
                zone_id = conn.execute(sa.select(zones.c.id).where(zones.c.code == ZONE)
                                       ).scalar_one()
                tiers = {code: add_price_tier(conn, session_id, code, name, amount,
                                              seat_category=category, actor="demo")
                         for code, name, amount, category in TIERS}
                inventory.confirm_configuration(conn, session_id, actor="demo")
                inventory.put_on_sale(conn, session_id, actor="demo")
                till = create_staff(conn, "online-till", password() + "-Till-7", "sales",
                                    actor="demo")
                token = create_token(conn, till, "demo buyers", "demo")[1]
        finally:
            engine.dispose()
        self.sale = Sale(session_id, zone_id, tiers["B"], token)

    def start_buyers(self, hub_url: str) -> None:
        assert self.sale is not None, "open_sale first"
        self.buyers = Buyers(hub_url, self.sale, self.log_path)
        self.buyers.start()

    def settle(self, engine_factory: Callable[[], sa.Engine], timeout_s: float,
               stop: Callable[[], bool]) -> None:
        """Before the summary: let the last buyers' payment notifications reach the hub."""
        if self.buyers is not None:
            engine = engine_factory()
            try:
                wait_paid(engine, self.buyers.clicked, timeout_s, stop)
            finally:
                engine.dispose()

    def stop_buyers(self) -> None:
        if self.buyers is not None:
            self.buyers.stopping.set()
            self.buyers.join(TIMEOUT_S * 3)


def orders_paid(conn: sa.Connection) -> int:
    """Sales paid through no channel: the buyers' (the presale's paid applications are orders
    too, of kind presale, and a partner's or a contract customer's order is its channel's:
    not counted here)."""
    from cloud.sales.tables import orders

    return conn.execute(sa.select(sa.func.count()).select_from(orders).where(
        orders.c.state == "paid", orders.c.kind == "sale", orders.c.channel_id.is_(None))
    ).scalar_one()


class Buyers(threading.Thread):
    """One buyer every :data:`BUY_EVERY_S` seconds: an order of one to three adjacent seats
    through ``POST /api/v1/sessions/<id>/orders``, a WeChat payment through
    ``POST /api/v1/orders/<number>/payments``, and the click on **Pay** on the sandbox's page
    that the payment's QR code opens. A buyer the hub or the sandbox refuses is written to
    the buyers' log (and counted), and the next one comes."""

    def __init__(self, hub_url: str, sale: Sale, log_path: Path,
                 every_s: float = BUY_EVERY_S):
        super().__init__(name="demo-buyers", daemon=True)
        self.hub_url, self.sale, self.log_path, self.every_s = hub_url, sale, log_path, every_s
        self.stopping = threading.Event()
        self.clicked: list[str] = []      # orders whose buyer clicked Pay
        self.refused = 0

    def run(self) -> None:
        n = 0
        with requests.Session() as http, open(self.log_path, "a") as out:
            http.headers["Authorization"] = f"Bearer {self.sale.token}"
            while not self.stopping.wait(self.every_s if n else 0):
                n += 1
                try:
                    self.clicked.append(self.buy(http, 1 + n % 3))
                    out.write(f"buyer {n}: order {self.clicked[-1]} clicked Pay on the "
                              "sandbox's page\n")
                except (requests.RequestException, BuyerRefused) as e:
                    self.refused += 1
                    out.write(f"buyer {n}: {type(e).__name__}: {e}\n")
                    if getattr(e, "code", None) in SOLD_OUT:
                        out.write("the zone is sold out: no more buyers\n")
                        return
                finally:
                    out.flush()

    def buy(self, http: requests.Session, seats: int) -> str:
        line = {"zone_id": self.sale.zone_id, "price_tier_id": self.sale.tier_id}
        return order_and_pay(http, self.hub_url, self.sale, [line] * seats)


def order_and_pay(http: requests.Session, hub_url: str, sale: Sale, lines: list[dict],
                  buyer: str | None = None) -> str:
    """An order through ``POST /api/v1/sessions/<id>/orders`` (``http`` carries the till's
    token; ``buyer`` is the account it is bought for, ``buyer:<id>``), a WeChat payment
    through ``POST /api/v1/orders/<number>/payments``, and the click on **Pay** on the
    sandbox's page that the payment's QR code opens: the order's number."""
    body: dict = {"lines": lines, **({"buyer": buyer} if buyer else {})}
    order = _post(http, hub_url + f"/api/v1/sessions/{sale.session_id}/orders", body)
    paying = _post(http, hub_url + f"/api/v1/orders/{order['number']}/payments",
                   {"provider": PROVIDER})
    if not paying.get("qr_text"):
        raise BuyerRefused(f"order {order['number']}: no QR code ({paying})")
    # the QR code opens the sandbox's pay page; the buyer clicks Pay there
    page = requests.post(paying["qr_text"], data={"result": "pay"}, timeout=TIMEOUT_S)
    if page.status_code != 200:
        raise BuyerRefused(f"the pay page answered {page.status_code}")
    return order["number"]


def _post(http: requests.Session, url: str, body: dict) -> dict:
    r = http.post(url, json=body, timeout=TIMEOUT_S,
                  headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"})
    if r.status_code not in (200, 201):
        code = r.json().get("error") if r.headers.get("Content-Type", "").startswith(
            "application/json") else None
        raise BuyerRefused(f"{url}: {r.status_code} {r.text[:200]}", code)
    return r.json()


class BuyerRefused(Exception):
    """The hub or the sandbox said no to a buyer (the answer is in the message; the hub's
    error code in ``code``)."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


def wait_paid(engine: sa.Engine, numbers: list[str], timeout_s: float,
              stop: Callable[[], bool]) -> None:
    """Before the summary: give the sandbox's notifications of the last clicks a moment to
    reach the hub (every clicked order paid, or the time is up)."""
    import time

    from cloud.sales.tables import orders

    deadline = time.monotonic() + timeout_s
    while numbers and time.monotonic() < deadline and not stop():
        with engine.connect() as conn:
            paid = conn.execute(sa.select(sa.func.count()).select_from(orders).where(
                orders.c.number.in_(numbers), orders.c.state == "paid")).scalar_one()
        if paid == len(numbers):
            return
        time.sleep(0.3)
