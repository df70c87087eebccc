"""The hub killed with SIGKILL in the middle of a storm of payment notifications, on SQLite and
PostgreSQL: every paid order has its tickets exactly once, no unpaid order has any, no
payment is captured twice, and money an order could not take is refunded.

Everything is a real process: ``wicket-hub serve`` (gunicorn, two workers, in a process group
of its own so that SIGKILL takes the master and its workers at once, as a power cut does),
``wicket-hub worker`` and ``wicket-hub payments-sandbox``. Buyers' orders are made and paid
through the hub's API and the sandbox's pay endpoint; every trade's notifications are
duplicated and followed by an older state (the sandbox's ``duplicate`` and ``out_of_order``).
The kill is not timed: it comes once the sandbox reports that :data:`KILL_AFTER_ACKED`
notifications were acknowledged, and the test checks, from the sandbox's record taken while
the hub is down, that some were taken and many were not. The hub is started again on the
same database; the sandbox's retries (its providers' schedules, compressed) deliver the rest.
Every check at the end reads the hub's database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.venues import add_zone, create_venue
from cloud.core.audit import audit_log
from cloud.core.db import init_db, make_engine
from cloud.core.jobs import jobs
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session
from cloud.inventory.tables import session_seats
from cloud.payments.keys import make_merchant_keys, sandbox_settings
from cloud.payments.tables import payment_refunds, payments
from cloud.sales.tables import order_lines, orders, tickets
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from sync.timeutil import utcnow
from tests.cloud.conftest import hub_url  # noqa: F401
from tests.cloud.payments.conftest import start_sandbox
from tests.cloud.payments.conftest import stop as stop_process
from tests.e2e.conftest import ENV, ROOT, free_port, wait_for

PRICE = 38_000
SEATS = 100
# orders of two seats each, by what their buyers do
PAID = {"wechat": 14, "alipay": 14}     # pay once
FAILED = {"wechat": 2, "alipay": 2}     # click "fail" on the pay page
CANCELLED = 4                           # cancelled at the box office, then paid all the same
PAID_TWICE = 4                          # paid by WeChat and by Alipay
KILL_AFTER_ACKED = 40
# the providers' retry schedules 2,000 times faster: a notification is given up after some 44 s
# (Alipay's seven attempts), far longer than the hub takes to start again
TIME_SCALE = 0.0005


class Hub:
    """``wicket-hub serve`` in a process group of its own, on a fixed port (so that it can be
    killed whole and started again at the same address)."""

    def __init__(self, db_url: str, env: dict[str, str], logs: Path):
        self.db_url, self.env, self.logs = db_url, env, logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.logs / f"hub-{self.starts}.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cloud.cli", "--db", self.db_url, "serve", "--bind",
                 f"127.0.0.1:{self.port}", "--workers", "2", "--public-url", self.url],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

        def answers() -> bool:
            assert self.proc.poll() is None, "the hub process exited"
            try:
                requests.post(f"{self.url}/api/sync/v1/heartbeat", json={}, timeout=2)
                return True
            except (requests.ConnectionError, requests.Timeout):
                return False

        wait_for(answers, timeout=60, what="the hub to answer")

    def kill(self) -> None:
        """SIGKILL to the master and every worker at once."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class Order:
    number: str
    plan: str                                          # paid, failed, cancelled, paid_twice
    trades: dict[str, str] = field(default_factory=dict)   # provider -> out_trade_no


class Storm:
    """A session on sale (one zone, one price), a clerk's API token, the sandbox, the hub and
    its worker, each a process."""

    def __init__(self, url: str, folder: Path):
        self.url, self.folder = url, folder
        init_db(url)
        self.engine = make_engine(url)
        self._shop()
        merchant = make_merchant_keys(folder / "merchant")
        self.sandbox_proc, port = start_sandbox(folder, time_scale=TIME_SCALE)
        self.sandbox = f"http://127.0.0.1:{port}"
        settings = {**merchant, **sandbox_settings(folder / "published"),
                    "PAYMENT_PROVIDERS": "offline,wechat,alipay", "PAYMENTS_TIMEOUT": "30"}
        env = {**ENV, **{f"WICKET_HUB_{k}": v for k, v in settings.items()}}
        self.hub = Hub(url, env, folder)
        self.worker_env = {**env, "WICKET_HUB_PUBLIC_URL": self.hub.url}
        self.worker: subprocess.Popen | None = None
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def _shop(self) -> None:
        start = utcnow() + timedelta(days=10)
        rows = "".join(f"L1,A,{1 + n // 20},{1 + n % 20},std\n" for n in range(SEATS))
        with self.engine.begin() as conn:
            activate_key(conn, create_key(conn))
            venue = create_venue(conn, "STORM", "Storm Arena")
            self.zone = add_zone(conn, venue, "A", "Zone A")
            assert import_seats_csv(conn, venue, "level,zone,row,number,category\n" + rows).ok
            event = create_event(conn, "CUP", "The Cup")
            self.session = create_session(conn, event, venue, "Final", start,
                                          start + timedelta(hours=3))
            self.tier = add_price_tier(conn, self.session, "STD", "Standard", PRICE,
                                       seat_category="std")
            inventory.confirm_configuration(conn, self.session)
            inventory.put_on_sale(conn, self.session)
            clerk = create_staff(conn, "clerk", "Harbour-lamp-2026", "sales", actor="test")
            self.token = create_token(conn, clerk, "till", "test")[1]

    def start_worker(self) -> None:
        with open(self.folder / "worker.log", "wb") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "cloud.cli", "--db", self.url, "worker", "--poll", "0.2"],
                cwd=ROOT, env=self.worker_env, stdout=log, stderr=subprocess.STDOUT)

    def close(self) -> int | None:
        code = None
        if self.worker is not None:
            self.worker.send_signal(signal.SIGTERM)
            code = self.worker.wait(timeout=60)
        self.hub.stop()
        stop_process(self.sandbox_proc)
        self.http.close()
        self.engine.dispose()
        return code

    # -- the buyers, through the hub's API and the sandbox --------------------------------

    def post(self, path: str, body: dict | None = None) -> dict:
        r = self.http.post(self.hub.url + path, json=body or {}, timeout=120,
                           headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r.json()

    def control(self, method: str, path: str, **kw) -> dict:
        r = requests.request(method, self.sandbox + path, timeout=120, **kw)
        r.raise_for_status()
        return r.json()

    def order(self, plan: str, providers: tuple[str, ...]) -> Order:
        line = {"zone_id": self.zone, "price_tier_id": self.tier}
        made = self.post(f"/api/v1/sessions/{self.session}/orders", {"lines": [line, line]})
        o = Order(made["number"], plan)
        for name in providers:
            started = self.post(f"/api/v1/orders/{o.number}/payments", {"provider": name})
            assert started["state"] == "pending" and started["qr_text"], started
            o.trades[name] = started["payment"]
            self.control("POST", "/_sandbox/faults", json={
                "faults": ["duplicate", "out_of_order"], "out_trade_no": started["payment"]})
        if plan == "cancelled":
            assert self.post(f"/api/v1/orders/{o.number}/cancel")["state"] == "cancelled"
        return o

    def deliveries(self) -> list[dict]:
        return self.control("GET", "/_sandbox/deliveries")["deliveries"]


@pytest.fixture
def storm(hub_url, tmp_path):  # noqa: F811
    made = Storm(hub_url, tmp_path)
    try:
        made.hub.start()
        yield made  # the test starts the worker
    finally:
        assert made.close() in (0, None), (tmp_path / "worker.log").read_text()[-3000:]


def _buyers() -> list[tuple[str, tuple[str, ...]]]:
    plans = [("paid", (name,)) for name, n in PAID.items() for _ in range(n)]
    plans += [("failed", (name,)) for name, n in FAILED.items() for _ in range(n)]
    plans += [("cancelled", ("wechat" if i % 2 else "alipay",)) for i in range(CANCELLED)]
    plans += [("paid_twice", ("wechat", "alipay")) for _ in range(PAID_TWICE)]
    return plans


@pytest.mark.slow
def test_a_hub_killed_amid_a_storm_of_notifications_sells_each_paid_order_once(storm):
    with ThreadPoolExecutor(max_workers=6) as pool:
        made = list(pool.map(lambda p: storm.order(*p), _buyers()))
        # the storm: every buyer clicks at once; each click queues the trade's notifications
        clicks = [(no, "fail" if o.plan == "failed" else "pay")
                  for o in made for no in o.trades.values()]
        list(pool.map(lambda c: storm.control("POST", f"/_sandbox/pay/{c[0]}",
                                              json={"result": c[1]}), clicks))
    # the worker once every buyer has clicked: it closes at the provider the open trades of
    # orders that can no longer take them (cancelled, or paid by the other trade), and a
    # close coming before a click would make that buyer's payment never happen; here each
    # was paid first, so the worker finds it paid and has it refunded
    storm.start_worker()
    reached = storm.control("GET", "/_sandbox/wait",
                            params={"acked": KILL_AFTER_ACKED, "timeout": 120})
    assert reached["ok"], "the sandbox never got that many notifications taken"
    storm.hub.kill()
    at_kill = storm.deliveries()
    acked_at_kill = sum(d["acked"] for d in at_kill)
    # the kill fell in the middle of the storm: some notifications taken, many still to come
    assert KILL_AFTER_ACKED <= acked_at_kill < len(at_kill) - KILL_AFTER_ACKED, \
        (acked_at_kill, len(at_kill))

    storm.hub.start()  # the same database, the same address
    expected_refunds = CANCELLED + PAID_TWICE
    wait_for(lambda: _refunds_ended(storm) >= expected_refunds, timeout=120,
             what="the worker's refunds to end")
    settled = storm.control("GET", "/_sandbox/wait", params={"settled": 1, "timeout": 120})
    assert settled["ok"], "the sandbox still had notifications to deliver"
    everything = settled["deliveries"]
    assert all(d["acked"] for d in everything), [d for d in everything if not d["acked"]][:3]
    # some notifications met the dead hub and were taken only when it was back
    assert any(a["status"] == 0 for d in everything for a in d["attempts"])
    _check(storm, made)


def _refunds_ended(storm: Storm) -> int:
    with storm.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(payment_refunds).where(
            payment_refunds.c.state == "succeeded")).scalar_one()


def _check(storm: Storm, made: list[Order]) -> None:
    by_number = {o.number: o for o in made}
    with storm.engine.connect() as conn:
        order_rows = {r.number: r for r in conn.execute(sa.select(orders))}
        pays = {r.out_trade_no: r for r in conn.execute(sa.select(payments))}
        refunds = conn.execute(sa.select(payment_refunds)).all()
        ticket_rows = conn.execute(sa.select(tickets.c.id, tickets.c.order_id, tickets.c.seat_id,
                                             tickets.c.state)).all()
        lines = conn.execute(sa.select(order_lines)).all()
        paid_audits = conn.execute(sa.select(audit_log.c.subject).where(
            audit_log.c.action == "order.paid")).scalars().all()
        sold = conn.execute(sa.select(session_seats.c.seat_id, session_seats.c.order_id).where(
            session_seats.c.session_id == storm.session, session_seats.c.status == "sold")).all()
        unfinished = conn.execute(sa.select(jobs.c.kind, jobs.c.state, jobs.c.last_error)
                                  .where(jobs.c.state != "done")).all()
    assert set(order_rows) == set(by_number)
    want = {"paid": "paid", "paid_twice": "paid", "failed": "pending_payment",
            "cancelled": "cancelled"}
    assert {n: r.state for n, r in order_rows.items()} == \
        {n: want[o.plan] for n, o in by_number.items()}
    paid_ids = {r.id for r in order_rows.values() if r.state == "paid"}
    assert len(paid_ids) == sum(PAID.values()) + PAID_TWICE

    # every paid order has its two tickets, once; no other order has any
    per_order: dict[int, list] = {}
    for t in ticket_rows:
        per_order.setdefault(t.order_id, []).append(t)
    assert set(per_order) == paid_ids
    assert all(len(ts) == 2 and {t.state for t in ts} == {"issued"} for ts in per_order.values())
    for line in lines:
        issued = line.order_id in paid_ids
        assert (line.state == "issued") == issued and (line.ticket_id is not None) == issued
    assert sorted(paid_audits) == sorted(f"order:{i}" for i in paid_ids)  # paid once each
    # every sold seat is a ticket's, none twice, and only paid orders' seats are sold
    assert sorted(s.seat_id for s in sold) == sorted(t.seat_id for t in ticket_rows)
    assert len({s.seat_id for s in sold}) == len(sold) == 2 * len(paid_ids)

    # each paid order captured exactly one payment; every other payment that took money was
    # refunded in full; a failed payment took nothing
    captured = {r.payment_reference for r in order_rows.values() if r.state == "paid"}
    assert len(captured) == len(paid_ids)
    refunded = {}
    for r in refunds:
        trade = next(no for no, p in pays.items() if p.id == r.payment_id)
        assert trade not in refunded, f"{trade} refunded twice"
        refunded[trade] = r
    for o in made:
        took = {no for no in o.trades.values() if pays[no].state == "succeeded"}
        kept = took & captured
        if o.plan == "failed":
            assert not took and not kept
            assert {pays[no].state for no in o.trades.values()} <= {"pending", "closed"}
        elif o.plan == "cancelled":
            assert len(took) == 1 and not kept
        else:
            assert len(took) == len(o.trades) and len(kept) == 1, (o, took, kept)
        for no in took:
            p = pays[no]
            if no in kept:
                assert p.refunded == 0 and no not in refunded
            else:
                r = refunded[no]
                assert (r.state, r.amount, p.refunded) == ("succeeded", p.amount, p.amount)
    assert len(refunded) == CANCELLED + PAID_TWICE
    assert unfinished == [], unfinished
