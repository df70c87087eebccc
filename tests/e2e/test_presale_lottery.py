"""The presale lottery end to end against real processes: the hub (``wicket-hub serve``), its
worker, the payment sandbox and an appliance.

2,000 buyers (600 in `make test`) apply over the buyer's API for 300 tickets (90) of one session
in two tiers (100 and 200 seats, made by the seat CSV import), each paying their application's order on the payment
sandbox, which tells the hub with its signed notification. Staff then freeze the presale, two
of them enter the seed and the draw runs, all over the staff API; the published list's SHA-256
is the one the presale shows, ``tools/verify_draw.py`` redraws the published result byte for
byte from the list and the seed, and changing one application in the list changes its hash.
Every loser's money goes back through the sandbox (each refund confirmed by its notification);
a few winners choose their seats, the rest are assigned; every winner is seated once, no seat
twice, each application in one row; an appliance synced from the hub admits a presale ticket.

The buyers and their verified identities are made in the hub's database before it starts
(registration and verification have journeys of their own); everything after that goes over
HTTP, but for the deadline, which passes by moving it (nobody waits an hour).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from cloud.buyers import companions as comp
from cloud.buyers import sessions as buyer_sessions
from cloud.buyers.contacts import mobile_hash
from cloud.buyers.identities import request_verification
from cloud.buyers.tables import buyers, identities
from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.tables import seats
from cloud.catalog.venues import add_gate, add_zone, create_venue
from cloud.core.db import init_db, make_engine
from cloud.core.seal import keyring_for
from cloud.fleet import appliances
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session, edit_session
from cloud.lottery.tables import presale_applications, presales
from cloud.payments.tables import payment_refunds
from cloud.sales.tables import order_lines, orders, tickets
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from edge.reasons import Reason
from sync.sample import resident_id
from sync.timeutil import utcnow
from tests.cloud.payments.conftest import sandbox  # noqa: F401 (the sandbox fixture)
from tests.e2e.buyer_processes import HubCommand
from tests.e2e.conftest import ROOT, HubProcess, wait_for

# The proof is 2,000 applicants for 300 tickets (`make presale-proof`, about four
# minutes here); `make test` runs the same journey at 600 for 90, every step the same, to keep
# the suite within its time.
APPLICANTS = int(os.environ.get("WICKET_PRESALE_APPLICANTS", "600"))
PAIRS_EVERY = 3  # every third applicant applies for two tickets, naming a companion
ROW = 10  # seats per row
# rows of each tier: 100 and 200 seats for 2,000 applicants (at least 3 rows: the browser's
# winners take row 1, the API's from the last row back)
TIERS = {"vip": max(3, APPLICANTS // 200), "std": max(6, APPLICANTS // 100)}
SEED = "notary 2027-03-01 No. 0042 7781"
WAIT_S = 300  # generous: a loaded machine is slow, never wrong
THREADS = 6
PASSWORD = "Harbour-lamp-2026"


def _seat_csv() -> str:
    rows, n = [], 0
    for category, count in TIERS.items():
        for _ in range(count):
            n += 1
            rows += [f"L1,A,{n},{s},{category}" for s in range(1, ROW + 1)]
    return "level,zone,row,number,category\n" + "\n".join(rows) + "\n"


def _document(n: int, sequence: int) -> str:
    """A valid resident ID number: one birthday per applicant, 001 for them, 002 for their
    companion."""
    born = date(1970, 1, 1) + timedelta(days=n)
    return resident_id(f"110101{born:%Y%m%d}{sequence:03d}")


@dataclass
class Applicant:
    n: int
    token: str
    holders: list[str]
    number: str = ""
    order: str = ""

    @property
    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _add_buyers(conn: sa.Connection, count: int) -> list[Applicant]:
    """Buyers with their own verified identity (and every PAIRS_EVERY-th a verified companion),
    each signed in: what registration, verification and sign-in leave behind."""
    ring, now, made = keyring_for(conn), utcnow(), []
    for n in range(count):
        mobile = f"139{n:08d}"
        hashed = mobile_hash(conn, mobile)
        identity = request_verification(conn, name="张三", doc_type="resident_id",
                                        number=_document(n, 1), now=now)
        buyer_id = conn.execute(sa.insert(buyers).values(
            mobile_hash=hashed, sealed_mobile=ring.seal(mobile, f"buyers:mobile:{hashed}"),
            language="zh", state="active", identity_id=identity, created_at=now)
            .returning(buyers.c.id)).scalar_one()
        holders = ["me"]
        if n % PAIRS_EVERY == 0:
            friend = comp.add_companion(conn, buyer_id, name="李四", doc_type="resident_id",
                                        doc_number=_document(n, 2), now=now)
            holders.append(f"c{friend.id}")
        made.append(Applicant(n, buyer_sessions.start_session(conn, buyer_id, now=now),
                              holders))
    conn.execute(sa.update(identities).values(state="verified", verified_at=now))
    return made


def _set_up_hub(url: str) -> dict:
    init_db(url)
    engine = make_engine(url)
    now = utcnow()
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "Main Stand")
        add_gate(conn, venue, "G1", "Gate 1", ["A"])
        assert import_seats_csv(conn, venue, _seat_csv()).ok
        event = create_event(conn, "GAMES", "The Games")
        session = create_session(conn, event, venue, "Final", now - timedelta(minutes=10),
                                 now + timedelta(hours=3))
        tiers = [add_price_tier(conn, session, "VIP", "VIP", 88000, seat_category="vip"),
                 add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")]
        edit_session(conn, session, real_name=True)
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
        staff = {}
        for name, role in (("manager", "ticketing"), ("witness", "admin")):
            staff_id = create_staff(conn, name, PASSWORD, role, actor="test")
            staff[name] = {"Authorization":
                           f"Bearer {create_token(conn, staff_id, 'lottery', 'test')[1]}"}
        seat_ids = {(r.row, int(r.number)): r.id for r in conn.execute(
            sa.select(seats.c.id, seats.c.row, seats.c.number).where(seats.c.venue_id == venue))}
        made = {"event": event, "session": session, "tiers": tiers, "staff": staff,
                "seat_ids": seat_ids, "applicants": _add_buyers(conn, APPLICANTS),
                "appliance_token": appliances.register(conn, venue, "Gate box").token}
    engine.dispose()
    return made


@pytest.fixture
def lottery(tmp_path, sandbox):  # noqa: F811
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    made = _set_up_hub(url)
    hub = HubProcess(url)
    payments = {f"WICKET_HUB_{k}": v for k, v in sandbox.settings.items()}
    with ExitStack() as stack:
        hub.env.update({**payments, "WICKET_HUB_PUBLIC_URL": hub.url,
                        "WICKET_HUB_API_LIMIT": "100000 per minute"})
        hub.start()
        stack.callback(hub.stop)
        worker = HubCommand(url, ["worker", "--poll", "0.1"], {
            **payments, "WICKET_HUB_PUBLIC_URL": hub.url}, tmp_path / "worker.log")
        stack.callback(worker.stop)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        yield {"hub": hub, "engine": engine, "sandbox": sandbox, "tmp": tmp_path, **made}
        assert worker.stop() == 0, worker.output()[-5000:]


class Api:
    """HTTP with one connection pool per thread."""

    def __init__(self, base: str):
        self.base = base
        self.local = threading.local()

    def __call__(self, method: str, path: str, who: dict[str, str] | None = None,
                 key: bool = False, **kw) -> requests.Response:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        headers = dict(who or {})
        if key:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        url = path if path.startswith("http") else self.base + path
        return self.local.session.request(method, url, headers=headers, timeout=WAIT_S, **kw)


def set_up_presale(api: Api, w: dict) -> tuple[int, list[int]]:
    now = utcnow()
    manager = w["staff"]["manager"]
    r = api("POST", "/api/v1/presales", manager, key=True, json={
        "event_id": w["event"], "name": "The Final: presale", "max_quantity": 2,
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(hours=1)).isoformat(), "payment_minutes": 60})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    lots = []
    for tier, rows in zip(w["tiers"], TIERS.values(), strict=True):
        r = api("POST", f"/api/v1/presales/{pid}/lots", manager, key=True, json={
            "session_id": w["session"], "price_tier_id": tier, "tickets": rows * ROW})
        assert r.status_code == 201, r.text
        lots.append(r.json()["lot_id"])
    r = api("POST", f"/api/v1/presales/{pid}/open", manager, key=True)
    assert r.status_code == 200, r.text
    return pid, lots


def apply_and_pay(api: Api, pid: int, lots: list[int], a: Applicant) -> None:
    """One buyer: the application, the payment opened with WeChat Pay, and the buyer's
    payment on the sandbox's page, which notifies the hub. (Without Idempotency-Keys: a
    retried write is tests/cloud/lottery/test_api.py's, and each key costs the hub a write.)"""
    r = api("POST", f"/api/v1/buyer/presales/{pid}/applications", a.header, json={
        "lot_id": lots[a.n % 2], "quantity": len(a.holders), "holders": a.holders})
    assert r.status_code == 201, r.text
    a.number, a.order = r.json()["number"], r.json()["order"]
    r = api("POST", f"/api/v1/buyer/applications/{a.number}/payments", a.header,
            json={"provider": "wechat"})
    assert r.status_code == 201 and r.json()["qr_text"], r.text
    r = api("POST", r.json()["qr_text"], data={"result": "pay"})  # the sandbox's pay page
    assert r.status_code == 200, r.text


def _paid(w: dict) -> int:
    with w["engine"].connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(orders).where(
            orders.c.kind == "presale", orders.c.state == "paid")).scalar_one()


def freeze_seed_and_draw(api: Api, w: dict, pid: int) -> dict:
    manager, witness = w["staff"]["manager"], w["staff"]["witness"]
    with w["engine"].begin() as conn:  # the deadline passes
        now = utcnow()
        conn.execute(sa.update(presales).where(presales.c.id == pid).values(
            opens_at=now - timedelta(hours=1), closes_at=now - timedelta(seconds=1)))
    r = api("POST", f"/api/v1/presales/{pid}/freeze", manager, key=True)
    assert r.status_code == 200, r.text
    for who, outcome in ((manager, "first"), (witness, "fixed")):
        r = api("POST", f"/api/v1/presales/{pid}/seed", who, key=True, json={"seed": SEED})
        assert r.status_code == 200 and r.json() == {"seed": outcome}, r.text
    r = api("POST", f"/api/v1/presales/{pid}/draw", manager, key=True, json={
        "choose_closes_at": (utcnow() + timedelta(hours=1)).isoformat()})
    assert r.status_code == 200, r.text
    return r.json()["presale"]


def _verify_draw(folder: Path, listed: Path, seed: str, *args: str):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "verify_draw.py"),
                           str(listed), seed, *args], capture_output=True, text=True,
                          timeout=WAIT_S, cwd=folder)


def check_the_draw_is_verifiable(api: Api, w: dict, pid: int, shown: dict) -> None:
    """The list and result downloaded, the list's hash the published one, the result redrawn
    byte for byte by the standalone verifier; one application changed changes the hash."""
    manager, folder = w["staff"]["manager"], w["tmp"]
    listed, result = (api("GET", f"/api/v1/presales/{pid}/{name}", manager).content
                      for name in ("list", "result"))
    public = api("GET", f"/api/v1/buyer/presales/{pid}").json()
    assert hashlib.sha256(listed).hexdigest() == shown["list_sha256"] == public["list_sha256"]
    assert hashlib.sha256(result).hexdigest() == shown["result_sha256"]
    (folder / "list.txt").write_bytes(listed)
    (folder / "result.txt").write_bytes(result)
    done = _verify_draw(folder, folder / "list.txt", public["seed"], "--list-sha256",
                        shown["list_sha256"], "--result", str(folder / "result.txt"))
    assert done.returncode == 0 and done.stdout == "result matches\n", done.stderr
    lines = listed.decode().split("\n")
    i = next(i for i, line in enumerate(lines) if line.startswith("app ") and
             line.endswith(" 1"))
    lines[i] = lines[i][:-1] + "2"
    changed = "\n".join(lines).encode()
    assert hashlib.sha256(changed).hexdigest() != shown["list_sha256"]
    (folder / "changed.txt").write_bytes(changed)
    refused = _verify_draw(folder, folder / "changed.txt", public["seed"], "--list-sha256",
                           shown["list_sha256"])
    assert refused.returncode == 1 and "not the published" in refused.stderr


def refund_the_losers(api: Api, w: dict, pid: int, losers: int) -> None:
    manager = w["staff"]["manager"]
    r = api("POST", f"/api/v1/presales/{pid}/refunds", manager, key=True)
    assert r.status_code == 202 and r.json()["progress"]["total"] == losers, r.text

    def all_confirmed():
        shown = api("GET", f"/api/v1/presales/{pid}/refunds", manager).json()
        return shown["refunded"] == shown["total"] == losers
    wait_for(all_confirmed, WAIT_S, "every loser's refund confirmed", every=0.5)
    with w["engine"].connect() as conn:
        refunds = conn.execute(sa.select(payment_refunds.c.state, sa.func.count()).join(
            presale_applications, presale_applications.c.refund_id == payment_refunds.c.id)
            .group_by(payment_refunds.c.state)).all()
    assert dict(refunds) == {"succeeded": losers}


def choose_seats_in_browser(w: dict, applicants: list[Applicant]) -> dict[str, list[int]]:
    """Winners choose seats on the public site's seat map in a real browser (Debian's
    Chromium, zh-CN, a phone's screen), signed in with their buyer session: seats side by
    side at the start of their tier's first row (the API's winners take the last rows):
    {application: seat ids}."""
    from playwright.sync_api import sync_playwright

    hub = w["hub"].url
    chosen, taken = {}, {"vip": 0, "std": 0}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        try:
            for a in applicants:
                context = browser.new_context(locale="zh-CN",
                                              viewport={"width": 390, "height": 844})
                context.set_default_timeout(WAIT_S * 1000)
                context.add_cookies([{"name": "wicket_buyer", "value": a.token, "url": hub}])
                page = context.new_page()
                page.goto(f"{hub}/shop/zh/applications/{a.number}/seats", wait_until="load")
                tier = "vip" if a.n % 2 == 0 else "std"  # the first row of the tier
                row = "1" if tier == "vip" else str(TIERS["vip"] + 1)
                wanted = [w["seat_ids"][(row, taken[tier] + s)]
                          for s in range(1, len(a.holders) + 1)]
                taken[tier] += len(a.holders)
                for seat in wanted:
                    page.click(f"rect.pickable[data-seat='{seat}']")
                page.click("#pick-form button")
                page.wait_for_url(re.compile(rf".*/shop/zh/applications/{a.number}[?].*"))
                state = page.locator("#application-state").get_attribute("data-state")
                assert state == "seated", state
                chosen[a.number] = wanted
                context.close()
        finally:
            browser.close()
    return chosen


def choose_seats_over_the_api(api: Api, w: dict, winners: list[Applicant]
                              ) -> dict[str, list[int]]:
    """Each winner takes seats side by side at the end of their tier's last row, the next
    winner of the tier just before them (a row that has no room left for a winner's seats
    passes to the row before it): never the seats at the start of the first row, which the
    browser's winners take, however many of the winners the draw put in one tier:
    {application: seat ids}."""
    chosen = {}
    cursor = {"vip": (TIERS["vip"], ROW), "std": (TIERS["vip"] + TIERS["std"], ROW)}
    for a in winners:
        tier = "vip" if a.n % 2 == 0 else "std"
        row, last = cursor[tier]
        if last < len(a.holders):
            row, last = row - 1, ROW
        cursor[tier] = (row, last - len(a.holders))
        wanted = [w["seat_ids"][(str(row), s)]
                  for s in range(last - len(a.holders) + 1, last + 1)]
        r = api("PUT", f"/api/v1/buyer/applications/{a.number}/seats", a.header, key=True,
                json={"seat_ids": wanted})
        assert r.status_code == 200 and r.json()["state"] == "seated", r.text
        chosen[a.number] = wanted
    return chosen


def check_every_winner_seated(w: dict, won: set[str]) -> dict[str, list]:
    """Every winner seated once with their quantity, in their tier, in one row; no seat
    twice: {application: [(row, number, code)]}."""
    with w["engine"].connect() as conn:
        rows = conn.execute(sa.select(
            presale_applications.c.number, presale_applications.c.state,
            presale_applications.c.quantity, presale_applications.c.lot_id, seats.c.row,
            seats.c.number.label("seat"), seats.c.category, tickets.c.code)
            .join(order_lines, order_lines.c.order_id == presale_applications.c.order_id)
            .join(seats, seats.c.id == order_lines.c.seat_id)
            .join(tickets, tickets.c.id == order_lines.c.ticket_id)
            .where(order_lines.c.state == "issued")).all()
        states = Counter(conn.execute(sa.select(presale_applications.c.state)).scalars())
    assert states["seated"] == len(won) and states["won"] == 0, states
    given: dict[str, list] = {}
    for r in rows:
        given.setdefault(r.number, []).append((r.row, r.seat, r.code, r.category, r.quantity))
    assert set(given) == won
    taken = [(row, seat) for held in given.values() for row, seat, *_ in held]
    assert len(taken) == len(set(taken)), "a seat given twice"
    for number, held in given.items():
        assert len(held) == held[0][4], number
        assert len({row for row, *_ in held}) == 1, (number, held)
        assert len({category for *_, category, _ in held}) == 1, (number, held)
    return given


def test_two_thousand_apply_the_draw_is_verifiable_losers_are_refunded_winners_walk_in(
        lottery, make_appliance):
    w = lottery
    api = Api(w["hub"].url)
    started = time.monotonic()
    pid, lots = set_up_presale(api, w)
    applicants: list[Applicant] = w["applicants"]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda a: apply_and_pay(api, pid, lots, a), applicants))
    wait_for(lambda: _paid(w) == APPLICANTS, WAIT_S, "every application paid", every=0.5)
    applied = time.monotonic()

    shown = freeze_seed_and_draw(api, w, pid)
    assert [c["applications"] for c in shown["lot_counts"]] == [APPLICANTS // 2] * 2
    check_the_draw_is_verifiable(api, w, pid, shown)
    public = api("GET", f"/api/v1/buyer/presales/{pid}").json()
    won = {n for numbers in public["winners"].values() for n in numbers}
    by_number = {a.number: a for a in applicants}
    tickets_won = sum(len(by_number[n].holders) for n in won)
    assert tickets_won <= ROW * sum(TIERS.values()) and len(won) < APPLICANTS
    refund_the_losers(api, w, pid, APPLICANTS - len(won))
    refunded = time.monotonic()

    winners = sorted((by_number[n] for n in won), key=lambda a: a.n)
    chosen = choose_seats_in_browser(w, winners[:2])
    chosen |= choose_seats_over_the_api(api, w, winners[2:6])
    r = api("POST", f"/api/v1/presales/{pid}/assign", w["staff"]["manager"], key=True)
    assert r.status_code == 200 and r.json()["seated"] == len(won) - len(chosen), r.text
    given = check_every_winner_seated(w, won)
    for number, wanted in chosen.items():
        assert {w["seat_ids"][(row, int(seat))] for row, seat, *_ in given[number]} \
            == set(wanted)
    loser = next(a for a in applicants if a.number not in won)
    shown_loser = api("GET", f"/api/v1/buyer/applications/{loser.number}", loser.header).json()
    assert shown_loser["state"] in ("refunding", "refunded") and shown_loser["seats"] == []
    with w["engine"].connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets).join(
            orders, orders.c.id == tickets.c.order_id).where(
            orders.c.number == loser.order)).scalar_one() == 0

    box = make_appliance()
    r = box.cli("enroll", "--hub", w["hub"].url, "--token", w["appliance_token"])
    assert r.returncode == 0, r.stderr
    r = box.cli("sync", "--once")
    assert r.returncode == 0, r.stderr
    box.add_lane()
    code = given[winners[0].number][0][2]
    assert box.scan(code).reason is Reason.OK
    assert box.scan(code).reason is Reason.ALREADY_ENTERED
    print(f"\npresale lottery: {APPLICANTS} applied and paid in {applied - started:.1f} s, "
          f"drawn and refunded by {refunded - started:.1f} s, all done in "
          f"{time.monotonic() - started:.1f} s")
