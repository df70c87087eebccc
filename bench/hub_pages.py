"""How fast the staff pages answer on the demo stadium (about 20,000 seats, three sessions,
5,000 real-name tickets), signed in as an admin, through the Flask test client.

    .venv/bin/python bench/hub_pages.py [--db URL] [--runs 20]

--db takes an empty database (default: a SQLite file in a temporary directory). Each figure is
the median over --runs requests, in milliseconds: venue_page_ms, session_page_ms,
seats_zone_page_ms (the 1,000-seat page of one zone), holder_search_ms (POST by document
number), ticket_page_ms, box_office_map_ms (the point of sale with the SVG seat map of a
1,000-seat zone), box_office_sale_ms (one seated real-name ticket, an order paid in cash).
In the same run, the floor: floor_redirect_ms, an anonymous request answered with the
redirect to the sign-in page (the page machinery without any database work). Target: every page under 250 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from cloud.app import create_app  # noqa: E402
from cloud.catalog.tables import seats, zones  # noqa: E402
from cloud.core import seal  # noqa: E402
from cloud.core.db import init_db  # noqa: E402
from cloud.demo import load_demo  # noqa: E402
from cloud.inventory.seats import confirm_configuration, put_on_sale  # noqa: E402
from cloud.inventory.tables import session_seats  # noqa: E402
from cloud.sales.holders import holder  # noqa: E402
from cloud.sales.tables import tickets  # noqa: E402
from cloud.staff.staff import create_staff  # noqa: E402
from sync.sample import fake_resident_id  # noqa: E402

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--db")
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="wicket-bench-")
    url = args.db or f"sqlite:///{tmp}/hub.db"
    os.environ[seal.ENV] = os.path.join(tmp, "data.key")  # the hub's data key, for this run
    seal.create_key_file(os.environ[seal.ENV])
    try:
        init_db(url)
        # the pages' speed, not the second sign-in step: no role needs a one-time password
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "b" * 40,
                          "TOTP_REQUIRED_ROLES": ()})
        engine = app.extensions["db"]
        note("loading the demo stadium…")
        with engine.begin() as conn:
            demo = load_demo(conn, tickets=5000)
            create_staff(conn, "bench-admin", PASSWORD, "admin", actor="bench")
            session = demo.session_ids[1]
            confirm_configuration(conn, session)
            put_on_sale(conn, session)
            number = conn.execute(sa.select(tickets.c.number).where(
                tickets.c.holder_id.is_not(None)).limit(1)).scalar()
            doc = holder(conn, conn.execute(sa.select(tickets.c.holder_id).where(
                tickets.c.number == number)).scalar()).doc_number  # sealed: opened here
            free = list(conn.execute(
                sa.select(seats.c.level, seats.c.row, seats.c.number)
                .join(session_seats, session_seats.c.seat_id == seats.c.id)
                .where(session_seats.c.session_id == session,
                       session_seats.c.status == "available",
                       session_seats.c.category == "sellable")
                .order_by(seats.c.id.desc()).limit(args.runs)))
            zone = conn.execute(sa.select(zones.c.id).where(
                zones.c.venue_id == demo.venue_id, zones.c.code == "N1")).scalar_one()
        client = app.test_client()
        token = _CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
        r = client.post("/login", data={"username": "bench-admin", "password": PASSWORD,
                                        "csrf_token": token})
        assert r.status_code == 303
        token = _CSRF.search(client.get("/venues").get_data(as_text=True)).group(1)

        def get(path):
            def run():
                r = client.get(path)
                assert r.status_code == 200, (path, r.status_code)
            return run

        def holder_search():
            r = client.post("/tickets/holder", data={"doc_number": doc, "csrf_token": token})
            assert r.status_code == 200 and number in r.get_data(as_text=True)

        seats_left = iter(free)
        rng = random.Random(3)

        def sale():
            level, row, seat = next(seats_left)
            r = client.post(f"/box-office/{session}/order", data={
                "seats": f"{level}-{row}-{seat}", "payment": "cash",
                "holder_name_0": "王小明", "doc_type_0": "resident_id",
                "doc_number_0": fake_resident_id(rng), "csrf_token": token})
            assert r.status_code == 303, r.get_data(as_text=True)[:500]

        anonymous = app.test_client()

        def floor():
            assert anonymous.get("/venues").status_code == 303

        figures = {
            "venue_page_ms": median_ms(get(f"/venues/{demo.venue_id}"), args.runs),
            "session_page_ms": median_ms(get(f"/sessions/{session}"), args.runs),
            "seats_zone_page_ms": median_ms(get(f"/sessions/{session}/seats?zone=N1"),
                                            args.runs),
            "holder_search_ms": median_ms(holder_search, args.runs),
            "ticket_page_ms": median_ms(get(f"/tickets/{number}"), args.runs),
            "box_office_map_ms": median_ms(get(f"/box-office/{session}?zone={zone}"),
                                           args.runs),
            "box_office_sale_ms": median_ms(sale, args.runs),
            "floor_redirect_ms": median_ms(floor, args.runs),
        }
        for name, value in figures.items():
            print(f"{name}: {value:.1f}")
        slow = [n for n, v in figures.items() if v > 250]
        print(f"pages_over_250ms: {len(slow)}")
        engine.dispose()
        return 1 if slow else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
