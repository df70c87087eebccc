"""Selling through orders over HTTP: ``wicket-hub serve --workers 2`` (``--threads`` 1 unless
told) on PostgreSQL, on this
machine, with a session on sale in three zones (a large one for holds, one for checkouts, a
small one to sell out).

- ``holds_per_s``: N clients at once, each holding single-seat orders (best available in the
  large zone) one after another; orders held per second of wall time.
- ``cpu_hub_ms_per_hold``, ``cpu_db_ms_per_hold``, ``cpu_clients_ms_per_hold``: the CPU the
  hub's processes, the database server and the benchmark's clients used while the holds were
  measured, per hold (all on this machine: together they are what its cores can give).
- ``checkout_p99_ms``: N clients at once, each buying one seat after another: the order held,
  then paid offline (the answer carries the tickets); the 99th percentile of hold → tickets.
- ``oversold``: after a race of 4 buyers per seat for the small zone (every buyer at once, each
  paying at once when held), the seats with more than one live ticket (must be 0).
- ``availability_qps``: N clients at once, each asking for the session's availability (per
  zone and tier, the public ``GET /api/public/v1/sessions/<id>/availability`` a buyer's page
  reads) one request after another on a kept-alive connection while the hub serves its
  cached answer; answers per second of wall time.

    .venv/bin/python bench/hub_orders.py [--clients 32] [--holds 2000] [--checkouts 480]
                                         [--race-seats 200] [--availability 6000]
                                         [--workers 2] [--threads 1]

The database is made on $WICKET_TEST_PG (an admin URL; default the test cluster's) and dropped
at the end. Each client comes from an address of its own behind one trusted proxy (as buyers
behind the hub's reverse proxy do), so the staff API's per-address rate limit is not what is
measured; the limit is still counted on every call, as in production, but set high
($WICKET_HUB_API_LIMIT) so that no client of the benchmark reaches it. Targets (issue 15): holds_per_s >= 500, checkout_p99_ms <= 500, oversold == 0,
availability_qps >= 2000.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from benchkit import CpuShare, connect, free_port, note, scratch_hub, server_pid  # noqa: E402

from cloud.catalog.events import add_price_tier, create_event  # noqa: E402
from cloud.catalog.venues import add_zone, create_venue  # noqa: E402
from cloud.core.db import init_db, make_engine  # noqa: E402
from cloud.fleet.keys import activate_key, create_key  # noqa: E402
from cloud.inventory import seats as inventory  # noqa: E402
from cloud.inventory.seat_map import import_seats_csv  # noqa: E402
from cloud.inventory.sessions import create_session  # noqa: E402
from cloud.staff.staff import create_staff  # noqa: E402
from cloud.staff.tokens import create_token  # noqa: E402
from sync.timeutil import utcnow  # noqa: E402

TIMEOUT = 120


def set_up(url: str, sizes: dict[str, int]) -> dict:
    """A session on sale with a zone of ``sizes[code]`` seats per code, one price tier, and a
    clerk's API token."""
    init_db(url)
    engine = make_engine(url)
    start = utcnow() + timedelta(days=10)
    rows = "".join(f"L1,{code},{code}{1 + n // 100},{1 + n % 100},std\n"
                   for code, size in sizes.items() for n in range(size))
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "BENCH", "Bench Arena")
        zones = {code: add_zone(conn, venue, code, f"Zone {code}") for code in sizes}
        assert import_seats_csv(conn, venue, "level,zone,row,number,category\n" + rows).ok
        session = create_session(conn, create_event(conn, "E", "Event"), venue, "Show", start,
                                 start + timedelta(hours=3))
        tier = add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
        clerk = create_staff(conn, "clerk", "Harbour-lamp-2026", "sales", actor="bench")
        token = create_token(conn, clerk, "till", "bench")[1]
    with engine.connect() as conn:  # what autovacuum does within a minute of the seats' making
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    return {"session": session, "tier": tier, "zones": zones, "token": token}


def serve(url: str, log, workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    """The hub as a process (its log to ``log``), once it answers."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WICKET_HUB_TRUSTED_PROXIES": "1",
           "WICKET_HUB_API_LIMIT": "1000000 per minute"}
    hub = subprocess.Popen([sys.executable, "-m", "cloud.cli", "--db", url, "serve", "--bind",
                            f"127.0.0.1:{port}", "--workers", str(workers), "--threads",
                            str(threads)], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=log)
    hub_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.post(f"{hub_url}/api/sync/v1/heartbeat", json={}, timeout=2)
            return hub, hub_url
        except (requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline or hub.poll() is not None:
                log.seek(0)
                note(log.read().decode(errors="replace")[-3000:])
                raise SystemExit("bench/hub_orders.py: the hub did not start") from None
            time.sleep(0.1)


class Answer:
    """An answer's status and JSON body."""

    def __init__(self, status: int, body: bytes):
        self.status_code, self.text = status, body.decode(errors="replace")

    def json(self):
        return json.loads(self.text)


class Client:
    """One buyer's till: its own connection and address (http.client: the benchmark measures
    the hub, not a heavy client library)."""

    def __init__(self, hub_url: str, shop: dict, n: int):
        self.http = connect(hub_url, TIMEOUT)
        self.shop = shop
        self.headers = {"Authorization": f"Bearer {shop['token']}",
                        "X-Forwarded-For": f"10.{n // 250}.{n % 250}.1",
                        "Content-Type": "application/json"}

    def _post(self, path: str, body: dict) -> Answer:
        """A write, sent again on a new connection (with the same Idempotency-Key, so done
        once) when the server had closed the kept-alive one (gthread workers, ``--threads``
        above 1, close an idle connection after a few seconds)."""
        headers = {**self.headers, "Idempotency-Key": str(uuid.uuid4())}
        data = json.dumps(body).encode()
        try:
            return self._send(path, data, headers)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.http.close()
            return self._send(path, data, headers)

    def _send(self, path: str, data: bytes, headers: dict) -> Answer:
        self.http.request("POST", path, body=data, headers=headers)
        answer = self.http.getresponse()
        return Answer(answer.status, answer.read())

    def hold(self, line: dict) -> Answer:
        return self._post(f"/api/v1/sessions/{self.shop['session']}/orders", {"lines": [line]})

    def pay(self, number: str) -> Answer:
        return self._post(f"/api/v1/orders/{number}/payments", {"provider": "offline"})


def together(clients: list, work) -> tuple[float, list]:
    """Run ``work(client)`` on every client at once (released by a barrier); the wall seconds
    from the release to the last one done, and what each returned."""
    barrier = threading.Barrier(len(clients) + 1)

    def run(client):
        barrier.wait()
        return work(client)

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        futures = [pool.submit(run, c) for c in clients]
        barrier.wait()
        t0 = time.perf_counter()
        results = [f.result() for f in futures]
        return time.perf_counter() - t0, results


def holds_per_s(clients: list[Client], shop: dict, total: int) -> float:
    line = {"zone_id": shop["zones"]["A"], "price_tier_id": shop["tier"]}
    each = total // len(clients)

    def work(client):
        statuses = [client.hold(line).status_code for _ in range(each)]
        return statuses.count(201)

    seconds, held = together(clients, work)
    assert sum(held) == each * len(clients), f"only {sum(held)} of {each * len(clients)} held"
    return sum(held) / seconds


def checkout_ms(clients: list[Client], shop: dict, total: int) -> list[float]:
    line = {"zone_id": shop["zones"]["B"], "price_tier_id": shop["tier"]}
    each = total // len(clients)

    def work(client):
        times = []
        for _ in range(each):
            t0 = time.perf_counter()
            held = client.hold(line)
            assert held.status_code == 201, held.text
            paid = client.pay(held.json()["number"])
            assert paid.status_code == 200 and len(paid.json()["tickets"]) == 1, paid.text
            times.append((time.perf_counter() - t0) * 1000)
        return times

    _seconds, per_client = together(clients, work)
    return sorted(t for times in per_client for t in times)


def sell_out(hub_url: str, shop: dict, seats: int) -> dict[int, int]:
    """Four buyers per seat of zone C at once, each paying when held: answers by status."""
    line = {"zone_id": shop["zones"]["C"], "price_tier_id": shop["tier"]}
    buyers = [Client(hub_url, shop, 1000 + n) for n in range(4 * seats)]

    def work(client):
        held = client.hold(line)
        if held.status_code == 201:
            paid = client.pay(held.json()["number"])
            assert paid.status_code == 200, paid.text
        return held.status_code

    _seconds, statuses = together(buyers, work)
    return {s: statuses.count(s) for s in set(statuses)}


class Reader:
    """One buyer's phone reading the public availability over one kept-alive connection
    (http.client: the benchmark measures the hub, not a heavy client library)."""

    def __init__(self, hub_url: str, shop: dict):
        self.http = connect(hub_url, TIMEOUT)
        self.path = f"/api/public/v1/sessions/{shop['session']}/availability"

    def availability(self) -> int:
        self.http.request("GET", self.path)
        answer = self.http.getresponse()
        answer.read()
        return answer.status


def availability_qps(hub_url: str, shop: dict, clients: int, total: int) -> float:
    each = total // clients
    readers = [Reader(hub_url, shop) for _ in range(clients)]
    assert readers[0].availability() == 200  # the first answer read and cached

    def work(reader):
        statuses = [reader.availability() for _ in range(each)]
        return statuses.count(200)

    seconds, answered = together(readers, work)
    assert sum(answered) == each * clients, f"{sum(answered)} of {each * clients}"
    return sum(answered) / seconds


def oversold(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        found = conn.execute(sa.text(
            "SELECT count(*) FROM (SELECT seat_id FROM tickets WHERE state = 'issued' AND "
            "seat_id IS NOT NULL GROUP BY session_id, seat_id HAVING count(*) > 1) AS twice"
        )).scalar_one()
    engine.dispose()
    return found


def measure(url: str, args) -> None:
    shop = set_up(url, {"A": args.holds, "B": args.checkouts, "C": args.race_seats})
    note(f"set up: {args.holds + args.checkouts + args.race_seats} seats in three zones")
    log = tempfile.TemporaryFile()
    hub, hub_url = serve(url, log, args.workers, args.threads)
    try:
        clients = [Client(hub_url, shop, n) for n in range(args.clients)]
        with CpuShare(hub.pid, server_pid(url)) as cpu:
            rate = holds_per_s(clients, shop, args.holds)
        note(f"held {args.holds} single-seat orders with {args.clients} clients")
        times = checkout_ms(clients, shop, args.checkouts)
        note(f"checked out {len(times)} orders with {args.clients} clients")
        answers = sell_out(hub_url, shop, args.race_seats)
        note(f"sell-out race for {args.race_seats} seats: answers {answers}")
        assert answers.get(201) == args.race_seats, answers
        qps = availability_qps(hub_url, shop, args.clients, args.availability)
        note(f"asked for the availability {args.availability} times with {args.clients} clients")
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=60)
    print(f"clients: {args.clients}")
    print(f"server: wicket-hub serve --workers {args.workers} --threads {args.threads}")
    print(f"holds_per_s: {rate:.0f}")
    print("\n".join(cpu.lines("hold", args.holds)))
    print(f"checkout_p50_ms: {times[len(times) // 2]:.0f}")
    print(f"checkout_p99_ms: {times[min(len(times) - 1, int(len(times) * 0.99))]:.0f}")
    print(f"oversold: {oversold(url)}")
    print(f"availability_qps: {qps:.0f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--holds", type=int, default=2000)
    p.add_argument("--checkouts", type=int, default=480)
    p.add_argument("--race-seats", type=int, default=200)
    p.add_argument("--availability", type=int, default=6000)
    p.add_argument("--workers", type=int, default=2, help="the hub's gunicorn workers")
    p.add_argument("--threads", type=int, default=1, help="threads per worker")
    args = p.parse_args()
    with scratch_hub("wicket-bench") as url:
        measure(url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
