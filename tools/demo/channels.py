"""The demo's channels and distribution (issue 20), on the data ``load-demo`` made
(cloud/demo.py ``_channels_demo``).

First the run's own sign-ins and key, made as staff would on the channels' pages: a portal
user for Sunny Travel, a representative of Harbour Corp, a box-office clerk who works at the
North booth (their passwords made for the run and shown only in the banner), and Sunny
Travel's API key for its booking system. The key's secret is written to a file of the demo's
directory, owner-only, and never printed: the banner names the key and the file.

Then, with the hub serving, as the people would: Sunny Travel's booking system orders two West
Lake day tickets for today through the signed partner API (``POST /api/partner/v1/orders``,
with an ``Idempotency-Key`` and ``confirm``: paid at once from its prepaid balance at its
agreed price, the tickets issued); the representative signs in to the customer site
(``/customer/``) and books two seats of the evening final for the company's staff; and a
member of the ticketing staff (an account made for the run, its password kept in memory only)
confirms the company's bank transfer on the customer's order page: the order is paid and its
tickets issued. Everything that issues tickets happens in the hub's processes, which hold the
signing key's token; this process never does.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import requests
import sqlalchemy as sa

from cloud.demo import BOOTH, CONTRACT_TIER, CUSTOMER, DAY_TICKET, DISTRIBUTOR
from sync.timeutil import CHINA, utcnow
from tools.demo.children import DemoError, password

PORTAL_USER = "sunny-bookings"
REP_USER = "harbour-rep"
CLERK = "north-clerk"
DESK = "ticketing-desk"    # the staff who confirm contract customers' bank transfers
ACTOR = "demo"
KEY_NAME = "Sunny Travel booking system"
SEATS_ZONE = "W1"          # the West lower stand (VIP): the contract tier's seats
ORDER_PATH = "/api/partner/v1/orders"
BANK_REFERENCE = "DEMO-BANK-0002"
TIMEOUT_S = 30.0
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class ChannelsDemo:
    def __init__(self, directory: Path) -> None:
        self.secret_file = directory / "partner-api-key.json"
        self.logins: dict[str, tuple[str, str]] = {}
        self.key_id = ""
        self._secret = ""          # in memory, and in the owner-only file
        self.product_id = 0
        self.seats: dict[str, str] = {}   # what the representative asks for on the form
        self.order: dict = {}      # the partner API's answer
        self.booking: dict = {}    # the representative's order, once paid
        self.customer_id = 0
        self._desk = password()    # never shown: the desk's account is the run's own

    def run(self, hub_url: str, engine_factory: Callable[[], sa.Engine]) -> ChannelsDemo:
        """Everything above, in order; a refusal stops the demo (DemoError)."""
        engine = engine_factory()
        try:
            with engine.begin() as conn:
                self.set_up(conn, utcnow())
            self.partner_order(hub_url)
            number = self.book(hub_url)
            self.confirm(hub_url, number)
            with engine.connect() as conn:
                self.booking = paid_order(conn, number)
        except requests.RequestException as e:
            raise DemoError(f"channels: {type(e).__name__}: {e}") from e
        finally:
            engine.dispose()
        return self

    # -- set-up, in the hub's database --------------------------------------------------------

    def set_up(self, conn: sa.Connection, now: datetime) -> None:
        """The sign-ins, the clerk at the booth and the API key, in the caller's
        transaction; the key's secret written owner-only to :attr:`secret_file`."""
        from cloud.catalog.tables import price_tiers, products, zones
        from cloud.channels import api_keys, booths, customers
        from cloud.channels.channels import channel_by_code
        from cloud.channels.tables import API_SCOPES, channels, contract_customers
        from cloud.ledger.partners import add_portal_user
        from cloud.ledger.tables import partners
        from cloud.staff.staff import create_staff

        distributor = conn.execute(sa.select(partners.c.id).where(
            partners.c.code == DISTRIBUTOR[0])).scalar_one()
        self.logins["portal"] = (PORTAL_USER, password())
        add_portal_user(conn, distributor, PORTAL_USER, "Sunny Travel bookings",
                        self.logins["portal"][1], ACTOR, now)
        self.customer_id = customer = conn.execute(sa.select(contract_customers.c.id).where(
            contract_customers.c.code == CUSTOMER[0])).scalar_one()
        self.logins["rep"] = (REP_USER, password())
        customers.add_rep(conn, customer, REP_USER, "Harbour Corp travel desk",
                          self.logins["rep"][1], ACTOR, now)
        self.logins["clerk"] = (CLERK, password())
        create_staff(conn, CLERK, self.logins["clerk"][1], "sales", actor=ACTOR)
        booths.add_staff(conn, channel_by_code(conn, BOOTH[0]).id, CLERK, ACTOR, now)
        create_staff(conn, DESK, self._desk, "ticketing", actor=ACTOR)
        channel = conn.execute(sa.select(channels.c.id).where(
            channels.c.partner_id == distributor, channels.c.kind == "api")).scalar_one()
        self.key_id, self._secret = api_keys.create_key(
            conn, distributor, channel, KEY_NAME, list(API_SCOPES), api_keys.DEFAULT_PER_MINUTE,
            ACTOR, now)
        self.product_id = conn.execute(sa.select(products.c.id).where(
            products.c.code == DAY_TICKET[0])).scalar_one()
        tier = conn.execute(sa.select(price_tiers.c.id, price_tiers.c.session_id).where(
            price_tiers.c.code == CONTRACT_TIER[0])).one()
        zone = conn.execute(sa.select(zones.c.id).where(zones.c.code == SEATS_ZONE)).scalar_one()
        self.seats = {"session_id": str(tier.session_id), "price_tier_id": str(tier.id),
                      "zone_id": str(zone), "kind": "seat", "count": "2"}
        self.secret_file.unlink(missing_ok=True)
        fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"key_id": self.key_id, "secret": self._secret}, f)

    # -- over HTTP, as the partner's system and the representative ---------------------------

    def partner_order(self, hub_url: str) -> None:
        """Two day tickets for today (China), confirmed: paid from the account."""
        from cloud.channels.signing import signed_headers

        day = utcnow().astimezone(CHINA).date().isoformat()
        body = json.dumps({"lines": [{"product_id": self.product_id, "day": day,
                                      "quantity": 2}], "confirm": True}).encode()
        headers = signed_headers(self.key_id, self._secret, "POST", ORDER_PATH, body,
                                 int(time.time()), secrets.token_hex(16))
        headers.update({"Idempotency-Key": f"demo-{uuid.uuid4()}",
                        "Content-Type": "application/json"})
        r = requests.post(hub_url + ORDER_PATH, data=body, headers=headers, timeout=TIMEOUT_S)
        if r.status_code != 201:
            raise DemoError(f"the partner API refused Sunny Travel's order: {r.status_code} "
                            f"{r.text[:200]}")
        self.order = r.json()

    def book(self, hub_url: str) -> str:
        """The representative signs in to the customer site and books two seats of the
        contract tier; the order's number."""
        from cloud.channels.rep_pages import CSRF_COOKIE
        from cloud.web.web import CSRF_FIELD

        site = f"{hub_url}/customer"
        with requests.Session() as http:
            http.get(f"{site}/sign-in", timeout=TIMEOUT_S).raise_for_status()
            user, secret = self.logins["rep"]
            r = http.post(f"{site}/sign-in", data={
                "username": user, "password": secret,
                CSRF_FIELD: http.cookies.get(CSRF_COOKIE)}, timeout=TIMEOUT_S)
            if r.status_code != 200 or "/sign-in" in r.url:
                raise DemoError(f"the customer site refused {user}'s sign-in: {r.status_code}")
            r = http.post(f"{site}/book", data={
                **self.seats, CSRF_FIELD: http.cookies.get(CSRF_COOKIE)}, timeout=TIMEOUT_S,
                allow_redirects=False)
        if r.status_code != 303 or "/orders/" not in r.headers.get("Location", ""):
            raise DemoError(f"the customer site refused the booking: {r.status_code}")
        return r.headers["Location"].rstrip("/").rsplit("/", 1)[1]

    # -- staff confirm the bank transfer -----------------------------------------------------

    def confirm(self, hub_url: str, number: str) -> None:
        """The desk signs in to the hub's pages and records the bank transfer on the
        order's confirmation page."""
        order = f"{hub_url}/channels/customers/{self.customer_id}/orders/{number}"
        with requests.Session() as http:
            r = http.post(f"{hub_url}/login", data={
                "username": DESK, "password": self._desk,
                "csrf_token": _csrf(http, f"{hub_url}/login")}, timeout=TIMEOUT_S)
            if r.status_code != 200 or "/login" in r.url:
                raise DemoError(f"the hub refused {DESK}'s sign-in: {r.status_code}")
            r = http.post(f"{order}/payment", data={
                "reference": BANK_REFERENCE,
                "csrf_token": _csrf(http, f"{order}/confirm-payment")},
                timeout=TIMEOUT_S, allow_redirects=False)
            if r.status_code != 303:
                raise DemoError(f"the hub refused to record the payment of {number}: "
                                f"{r.status_code}")

    # -- what the banner shows ---------------------------------------------------------------

    def banner(self, hub_url: str) -> str:
        portal, rep, clerk = (self.logins.get(k, ("-", "-")) for k in ("portal", "rep", "clerk"))
        total = self.order.get("total", 0) / 100
        return f"""\
  Distributor              {hub_url}/partner/   login {portal[0]} / {portal[1]}
                           {DISTRIBUTOR[1]}'s order {self.order.get('number', '-')} through the signed partner API:
                           2 x {DAY_TICKET[1]}, {total:.2f} CNY at its agreed price
                           (list {DAY_TICKET[2] / 100:.2f} each), paid from its prepaid balance;
                           API key {self.key_id}, its secret in {self.secret_file} (owner-only)
  Contract customer        {hub_url}/customer/   login {rep[0]} / {rep[1]}
                           {CUSTOMER[1]}'s order {self.booking.get('number', '-')}: 2 seats, {CONTRACT_TIER[1]},
                           paid by bank transfer (confirmed by staff)
  Booth                    {hub_url}/box-office/   login {clerk[0]} / {clerk[1]}
                           ({BOOTH[1]}'s clerk: the sales are the booth's; every channel:
                           {hub_url}/channels)"""


def _csrf(http: requests.Session, url: str) -> str:
    page = http.get(url, timeout=TIMEOUT_S)
    found = _CSRF.search(page.text)
    if page.status_code != 200 or found is None:
        raise DemoError(f"no form at {url}: {page.status_code}")
    return found.group(1)


def paid_order(conn: sa.Connection, number: str) -> dict:
    """The order's number and its tickets, once it is paid."""
    from cloud.sales.tables import orders, tickets

    o = conn.execute(sa.select(orders.c.id, orders.c.state).where(orders.c.number == number)
                     ).one()
    if o.state != "paid":
        raise DemoError(f"order {number} is {o.state} after its payment was recorded")
    issued = conn.execute(sa.select(sa.func.count()).select_from(tickets).where(
        tickets.c.order_id == o.id)).scalar_one()
    return {"number": number, "tickets": issued}


def partner_orders(conn: sa.Connection) -> int:
    """Orders paid through a partner's channels (its API, its portal)."""
    from cloud.channels.tables import channels
    from cloud.sales.tables import orders

    return conn.execute(sa.select(sa.func.count()).select_from(
        orders.join(channels, channels.c.id == orders.c.channel_id))
        .where(orders.c.state == "paid", channels.c.partner_id.is_not(None))).scalar_one()
