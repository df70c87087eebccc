"""Signed partner orders over HTTP: ``wicket-hub serve --workers 2`` on PostgreSQL, on this
machine, with a distributor selling a scenic spot's day ticket through its API channel.

- ``orders_per_s``: 16 clients at once (each an ``http.client`` connection of its own), each
  placing orders of one day ticket one after another, every request signed with the
  distributor's key (HMAC-SHA256, a fresh nonce) and carrying an ``Idempotency-Key``; orders
  placed per second of wall time.
- ``order_p99_ms``: the 99th percentile of one order's request → answer in that run.
- ``cpu_hub_ms_per_order``, ``cpu_db_ms_per_order``, ``cpu_clients_ms_per_order``: the CPU
  the hub's processes, the database server and the benchmark's clients used in that run, per
  order (all on this machine: together they are what its cores can give).

With ``--confirm`` each order is also paid from the distributor's prepaid account and its
ticket issued in the same call (the account topped up first); without it each is held.

    .venv/bin/python bench/partner_api.py [--clients 16] [--orders 4000] [--confirm]
                                          [--workers 2] [--threads 1]

The database is made on $WICKET_TEST_PG (an admin URL; default the test cluster's) and dropped
at the end. The key's limit is set above what the run sends: the limit is still counted on
every call, as in production. Targets (issue 20): orders_per_s >= 300, order_p99_ms <= 200.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from benchkit import CpuShare, connect, note, scratch_hub, server_pid  # noqa: E402
from hub_orders import serve, together  # noqa: E402

from cloud.catalog.tables import products  # noqa: E402
from cloud.catalog.venues import create_venue  # noqa: E402
from cloud.channels import api_keys, signing  # noqa: E402
from cloud.channels.channels import create_channel  # noqa: E402
from cloud.channels.tables import (  # noqa: E402
    API_SCOPES,
    agreed_prices,
    sales_code_bindings,
    sales_codes,
)
from cloud.core.db import init_db, make_engine  # noqa: E402
from cloud.fleet.keys import activate_key, create_key  # noqa: E402
from cloud.inventory.quotas import add_quota  # noqa: E402
from cloud.ledger import chart  # noqa: E402
from cloud.ledger.tables import partners  # noqa: E402
from sync.timeutil import CHINA, utcnow  # noqa: E402

TIMEOUT = 120
AGREED = 10000


def set_up(url: str, orders: int, confirm: bool) -> dict:
    """A day product with stock for every order on one day, bound to a distributor at its
    agreed price, the distributor's API channel and key (and, to confirm, its prepaid money)."""
    init_db(url)
    engine = make_engine(url)
    now = utcnow()
    day = (now.astimezone(CHINA) + timedelta(days=1)).date()
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        spot = create_venue(conn, "LAKE", "West Lake scenic spot")
        product = conn.execute(sa.insert(products).values(
            code="LAKE-DAY", name="Lake day ticket", kind="day", amount=12000, currency="CNY",
            scope_kind="venues", scope=[spot], daily_limit=1).returning(products.c.id)
        ).scalar_one()
        add_quota(conn, "day", orders + 100, product_id=product, day=day)
        partner = conn.execute(sa.insert(partners).values(
            code="TRAVEL", name="Travel agency", kind="distributor", settle_days=0,
            created_by="bench", created_at=now).returning(partners.c.id)).scalar_one()
        chart.ensure(conn, chart.payable(partner), now=now)
        code = conn.execute(sa.insert(sales_codes).values(
            code="SC-LAKE", product_id=product, supplier_id=partner, name="Lake day",
            created_by="bench", created_at=now).returning(sales_codes.c.id)).scalar_one()
        conn.execute(sa.insert(sales_code_bindings).values(
            sales_code_id=code, partner_id=partner, granted_by="bench", granted_at=now))
        conn.execute(sa.insert(agreed_prices).values(
            partner_id=partner, product_id=product, amount=AGREED, currency="CNY",
            effective_from=now - timedelta(days=1), created_by="bench", created_at=now))
        channel = create_channel(conn, "travel-api", "Travel API", "api", partner_id=partner,
                                 actor="bench", now=now)
        key_id, secret = api_keys.create_key(conn, partner, channel, "bench", list(API_SCOPES),
                                             api_keys.MAX_PER_MINUTE, "bench", now)
        if confirm:
            _top_up(conn, partner, (orders + 100) * AGREED, now)
    engine.dispose()
    return {"product": product, "day": day.isoformat(), "key_id": key_id, "secret": secret}


def _top_up(conn: sa.Connection, partner: int, amount: int, now: datetime) -> None:
    from cloud.channels import accounts

    accounts.top_up(conn, partner, amount, "CNY", "BENCH-TOPUP-1", "bench", now)


class Client:
    """One partner system's connection, signing each request with the key (http.client: the
    benchmark measures the hub, not a heavy client library; the hub's workers close each
    connection after its answer, and it is opened again for the next)."""

    PATH = "/api/partner/v1/orders"

    def __init__(self, hub_url: str, shop: dict, confirm: bool):
        self.http = connect(hub_url, TIMEOUT)
        self.shop = shop
        self.body = json.dumps({"lines": [{"product_id": shop["product"], "day": shop["day"],
                                           "quantity": 1}], "confirm": confirm}).encode()

    def order(self) -> tuple[int, bytes]:
        headers = signing.signed_headers(self.shop["key_id"], self.shop["secret"], "POST",
                                         self.PATH, self.body, int(time.time()),
                                         secrets.token_hex(16))
        headers.update({"Content-Type": "application/json",
                        "Idempotency-Key": str(uuid.uuid4())})
        self.http.request("POST", self.PATH, body=self.body, headers=headers)
        answer = self.http.getresponse()
        return answer.status, answer.read()


def orders_run(clients: list[Client], total: int) -> tuple[float, list[float]]:
    each = total // len(clients)

    def work(client: Client) -> list[float]:
        times = []
        for _ in range(each):
            t0 = time.perf_counter()
            status, body = client.order()
            assert status == 201, body
            times.append((time.perf_counter() - t0) * 1000)
        return times

    seconds, per_client = together(clients, work)
    return each * len(clients) / seconds, sorted(t for ts in per_client for t in ts)


def measure(url: str, args) -> None:
    shop = set_up(url, args.orders, args.confirm)
    note(f"set up: a day product with stock for {args.orders} orders, a distributor's key")
    log = tempfile.TemporaryFile()
    hub, hub_url = serve(url, log, args.workers, args.threads)
    try:
        clients = [Client(hub_url, shop, args.confirm) for _ in range(args.clients)]
        assert clients[0].order()[0] == 201  # the first answer: the hub warmed up
        with CpuShare(hub.pid, server_pid(url)) as cpu:
            rate, times = orders_run(clients, args.orders)
        note(f"placed {len(times)} signed orders with {args.clients} clients")
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=60)
    print(f"clients: {args.clients}")
    print(f"server: wicket-hub serve --workers {args.workers} --threads {args.threads}")
    print(f"confirm: {'yes' if args.confirm else 'no'}")
    print(f"orders_per_s: {rate:.0f}")
    print(f"order_p50_ms: {times[len(times) // 2]:.0f}")
    print(f"order_p99_ms: {times[min(len(times) - 1, int(len(times) * 0.99))]:.0f}")
    print("\n".join(cpu.lines("order", len(times))))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--orders", type=int, default=4000)
    p.add_argument("--confirm", action="store_true",
                   help="pay each order from the prepaid account and issue its ticket")
    p.add_argument("--workers", type=int, default=2, help="the hub's gunicorn workers")
    p.add_argument("--threads", type=int, default=1, help="threads per worker")
    args = p.parse_args()
    with scratch_hub("wicket-bench-partner") as url:
        measure(url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
