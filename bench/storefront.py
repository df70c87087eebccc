"""The storefront under an on-sale crowd, over HTTP against ``wicket-hub serve --workers 2``
(``--threads`` 1 unless told) on PostgreSQL, on this machine, with one session on sale.

- ``waiting_room_admit_ratio``: the session's waiting room set to ``--rate`` admissions a
  second (``$WICKET_HUB_WAITING_ROOM_RATE``, burst 1), ``--visitors`` simulated visitors enter
  its queue at once, each from an address of its own (behind one trusted proxy, so the
  per-address limit on entering is counted as in production and no visitor reaches it), then
  poll over kept-alive connections, shared by ``--clients`` threads, until let in: each
  visitor asks again when the answer's estimate says it is near. The moment each first sees
  ``admitted`` is taken on the client's clock; the admitted rate is the visitors admitted
  between the first and the last tenth of them, by the time between those two. The figure is
  that rate by the configured one (target 0.9–1.1).

- ``page_qps`` and ``page_p99_ms``: ``--page-clients`` phones (threads, each on one kept-alive
  connection) read the public pages a crowd reads on an on-sale moment — the session page in
  both languages, the home page and a zone's seat map, in turn — ``--page-requests`` reads in
  all: answers a second, and the 99th percentile of one answer's time (targets: at least 2,000
  a second, at most 50 ms). The pages are served from each process's page cache (at most a
  second old), as a crowd without a CDN in front would be.

Each figure is one function of the running hub (``FIGURES``); ``main`` starts the hub once,
measures them in turn, and prints each as ``name: value``.

    .venv/bin/python bench/storefront.py [--visitors 400] [--rate 10] [--clients 40]
                                         [--workers 2] [--threads 1]
                                         [--page-requests 20000] [--page-clients 32]

The database is made on $WICKET_TEST_PG (an admin URL; default the test cluster's) and dropped
at the end. Targets (issue 17 §2): page_qps at least 2,000, page_p99_ms at most 50,
waiting_room_admit_ratio 0.9 to 1.1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchkit import connect, note, scratch_hub  # noqa: E402
from hub_orders import serve  # noqa: E402

from cloud.catalog.events import add_price_tier, create_event  # noqa: E402
from cloud.catalog.venues import add_zone, create_venue  # noqa: E402
from cloud.core.db import init_db, make_engine  # noqa: E402
from cloud.fleet.keys import activate_key, create_key  # noqa: E402
from cloud.inventory import seats as inventory  # noqa: E402
from cloud.inventory.seat_map import import_seats_csv  # noqa: E402
from cloud.inventory.sessions import create_session  # noqa: E402
from sync.timeutil import utcnow  # noqa: E402

TIMEOUT = 120


@dataclass
class Bench:
    """What every figure's function is given: the hub's address, the session on sale, and the
    command line."""

    hub_url: str
    session: int
    args: argparse.Namespace
    zone: int = 0
    notes: list[str] = field(default_factory=list)
    page_times: list[float] = field(default_factory=list)


def set_up(url: str, seats: int = 200) -> tuple[int, int]:
    """A session on sale (its sale window open) with one zone of ``seats`` seats: the session
    and the zone."""
    init_db(url)
    engine = make_engine(url)
    start = utcnow() + timedelta(days=10)
    rows = "".join(f"L1,A,{1 + n // 50},{1 + n % 50},std\n" for n in range(seats))
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "BENCH", "Bench Arena")
        zone = add_zone(conn, venue, "A", "Zone A")
        assert import_seats_csv(conn, venue, "level,zone,row,number,category\n" + rows).ok
        session = create_session(conn, create_event(conn, "E", "Event"), venue, "Show", start,
                                 start + timedelta(hours=3))
        add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
    engine.dispose()
    return session, zone


# -- waiting_room_admit_ratio -------------------------------------------------------------------

class Connection:
    """One kept-alive connection (http.client: the benchmark measures the hub, not a heavy
    client library)."""

    def __init__(self, hub_url: str):
        self.http = connect(hub_url, TIMEOUT)

    def ask(self, method: str, path: str, address: str) -> dict:
        self.http.request(method, path, headers={"X-Forwarded-For": address})
        answer = self.http.getresponse()
        body = answer.read()
        if answer.status not in (200, 201):
            raise RuntimeError(f"{method} {path}: {answer.status} {body[:300]!r}")
        return json.loads(body)


@dataclass
class Visitor:
    address: str
    token: str = ""
    number: int = 0
    due: float = 0.0  # when to ask again (perf_counter)
    entered_at: float = 0.0
    waiting_at: float = 0.0  # when it last heard it was still waiting
    admitted_at: float | None = None  # when it first heard it was let in


def _visit(conn: Connection, path: str, visitors: list[Visitor]) -> int:
    """Each visitor enters, then asks for its place when due (from a second before its
    estimate, then every 0.1 s) until let in; the requests made."""
    asked = 0
    waiting = list(visitors)
    while waiting:
        now = time.perf_counter()
        due = [v for v in waiting if v.due <= now]
        if not due:
            time.sleep(max(0.0, min(v.due for v in waiting) - now))
            continue
        for v in due:
            if v.token:
                place = conn.ask("GET", f"{path}?token={quote(v.token)}", v.address)
            else:
                place = conn.ask("POST", path, v.address)
                v.token, v.number = place["token"], place["number"]
            asked += 1
            now = time.perf_counter()
            v.entered_at = v.entered_at or now
            if place["admitted"]:
                v.admitted_at = now
            else:
                v.waiting_at = now
                v.due = now + (0.1 if place["estimate_s"] <= 1 else place["estimate_s"] - 1.0)
        waiting = [v for v in waiting if v.admitted_at is None]
    return asked


def _admitted_rate(visitors: list[Visitor]) -> tuple[float, int]:
    """Visitors let in per second once the crowd has entered (while the server answers only
    polls, so how late a visitor hears its answer no longer changes with the load): the
    inverse slope of the least-squares line through each visitor's number and moment of
    admission, taken halfway between the last answer "waiting" and the first "admitted" (for
    the visitors that heard both within 0.3 s)."""
    crowd_in = max(v.entered_at for v in visitors) + 1.0
    seen = [(v.number, (v.waiting_at + v.admitted_at) / 2) for v in visitors
            if v.waiting_at > crowd_in and v.admitted_at - v.waiting_at <= 0.3]
    if len(seen) < 20:
        raise SystemExit("bench/storefront.py: the queue emptied while the crowd entered: "
                         "lower --rate or raise --visitors")
    mean_n = sum(n for n, _ in seen) / len(seen)
    mean_t = sum(t for _, t in seen) / len(seen)
    slope = (sum((n - mean_n) * (t - mean_t) for n, t in seen)
             / sum((n - mean_n) ** 2 for n, _ in seen))
    return 1.0 / slope, len(seen)


def waiting_room_admit_ratio(bench: Bench) -> str:
    """The admitted rate the visitors see, by the configured rate."""
    args = bench.args
    path = f"/api/public/v1/sessions/{bench.session}/queue"
    visitors = [Visitor(f"10.{n // 250}.{n % 250}.1") for n in range(args.visitors)]
    shares = [visitors[i::args.clients] for i in range(args.clients)]
    barrier = threading.Barrier(args.clients)

    def run(share: list[Visitor]) -> int:
        conn = Connection(bench.hub_url)
        barrier.wait()
        return _visit(conn, path, share)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        asked = sum(pool.map(run, shares))
    seconds = time.perf_counter() - t0
    numbers = sorted(v.number for v in visitors)
    assert numbers == list(range(1, len(visitors) + 1)), "queue numbers not consecutive"
    admitted_rate, fitted = _admitted_rate(visitors)
    bench.notes.append(f"waiting room: {len(visitors)} visitors at {args.rate}/s, "
                       f"{asked} requests in {seconds:.1f} s ({asked / seconds:.0f}/s), "
                       f"admitted {admitted_rate:.2f}/s (fitted on {fitted} visitors)")
    return f"{admitted_rate / args.rate:.3f}"


# -- page_qps, page_p99_ms ---------------------------------------------------------------------

PAGES = ("/shop/zh/sessions/{session}", "/shop/en/sessions/{session}", "/shop/zh/",
         "/shop/zh/sessions/{session}/zones/{zone}")


def _read_pages(bench: Bench, share: int, barrier: threading.Barrier) -> list[float]:
    """One phone's reads of the public pages, in turn, over one kept-alive connection: each
    answer's time in milliseconds."""
    conn = connect(bench.hub_url, TIMEOUT)
    paths = [p.format(session=bench.session, zone=bench.zone) for p in PAGES]
    times = []
    barrier.wait()
    for i in range(share):
        t0 = time.perf_counter()
        conn.request("GET", paths[i % len(paths)])
        answer = conn.getresponse()
        body = answer.read()
        times.append((time.perf_counter() - t0) * 1000)
        if answer.status != 200 or b"</html>" not in body:
            raise RuntimeError(f"{paths[i % len(paths)]}: {answer.status}")
    return times


def _pages(bench: Bench) -> tuple[float, list[float]]:
    """The public pages read by ``--page-clients`` phones at once, ``--page-requests`` in all:
    answers a second, and every answer's time."""
    args = bench.args
    for path in PAGES:  # each page rendered once and kept, as a crowd finds it
        first = connect(bench.hub_url, TIMEOUT)
        first.request("GET", path.format(session=bench.session, zone=bench.zone))
        assert first.getresponse().status == 200, path
    share = args.page_requests // args.page_clients
    barrier = threading.Barrier(args.page_clients + 1)
    with ThreadPoolExecutor(max_workers=args.page_clients) as pool:
        running = [pool.submit(_read_pages, bench, share, barrier)
                   for _ in range(args.page_clients)]
        barrier.wait()
        t0 = time.perf_counter()
        times = [t for r in running for t in r.result()]
        seconds = time.perf_counter() - t0
    bench.notes.append(f"pages: {len(times)} reads of {len(PAGES)} public pages by "
                       f"{args.page_clients} phones in {seconds:.1f} s")
    return len(times) / seconds, sorted(times)


def page_qps(bench: Bench) -> str:
    qps, times = _pages(bench)
    bench.page_times = times
    return f"{qps:.0f}"


def page_p99_ms(bench: Bench) -> str:
    times = bench.page_times or _pages(bench)[1]
    return f"{times[min(len(times) - 1, int(len(times) * 0.99))]:.1f}"


# Each figure: its name and the function that measures it on the running hub.
FIGURES: list[tuple[str, Callable[[Bench], str]]] = [
    ("page_qps", page_qps),
    ("page_p99_ms", page_p99_ms),
    ("waiting_room_admit_ratio", waiting_room_admit_ratio),
]


def measure(url: str, args) -> None:
    session, zone = set_up(url)
    # the hub's settings for this run, read by `wicket-hub serve` from its environment
    os.environ.update({"WICKET_HUB_WAITING_ROOM_RATE": str(args.rate),
                       "WICKET_HUB_WAITING_ROOM_BURST": "1"})
    log = tempfile.TemporaryFile()
    hub, hub_url = serve(url, log, args.workers, args.threads)
    bench = Bench(hub_url, session, args, zone)
    figures = []
    try:
        for name, figure in FIGURES:
            figures.append((name, figure(bench)))
            note(bench.notes[-1] if bench.notes else f"measured {name}")
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=60)
    print(f"server: wicket-hub serve --workers {args.workers} --threads {args.threads}")
    print(f"visitors: {args.visitors}")
    print(f"waiting_room_rate: {args.rate}")
    for name, value in figures:
        print(f"{name}: {value}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--visitors", type=int, default=400)
    p.add_argument("--rate", type=float, default=10.0, help="the waiting room's rate (/s)")
    p.add_argument("--clients", type=int, default=40, help="client threads")
    p.add_argument("--workers", type=int, default=2, help="the hub's gunicorn workers")
    p.add_argument("--threads", type=int, default=1, help="threads per worker")
    p.add_argument("--page-requests", type=int, default=20000)
    p.add_argument("--page-clients", type=int, default=32, help="phones reading the pages")
    args = p.parse_args()
    with scratch_hub("wicket-bench") as url:
        measure(url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
