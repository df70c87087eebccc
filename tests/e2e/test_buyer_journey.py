"""A buyer's journey end to end, every step over HTTP against real processes, on
PostgreSQL: the hub (``wicket-hub serve``), its worker and its messenger, the sandbox SMS
gateway, the identity verification sandbox and a local SMTP server (aiosmtpd).

The buyer registers with the code the SMS gateway received; has their identity verified, the
service refusing a mistyped name once and then staying silent on the corrected one until the
worker gives up waiting and asks again; adds a companion, verified too; and a clerk's API
token sells them an order of two seats, one per person, paid at the booth. The ticket links
arrive by SMS and by e-mail; each link's page draws the ticket's QR code; an appliance synced
from this hub admits each code, with its holder's ID card, once only.

That a messenger killed mid-send loses no message and sends none twice is
tests/cloud/messaging/test_kill.py's, with real processes too; this journey checks that every
message it caused went out once and was delivered.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from cloud.buyers.idcheck_wire import sandbox_settings
from cloud.catalog.events import add_price_tier, create_event
from cloud.catalog.venues import add_gate, add_zone, create_venue
from cloud.core.db import init_db, make_engine
from cloud.core.jobs import jobs
from cloud.core.outbox import outbox
from cloud.fleet import appliances
from cloud.fleet.keys import activate_key, create_key
from cloud.inventory import seats as inventory
from cloud.inventory.seat_map import import_seats_csv
from cloud.inventory.sessions import create_session, edit_session
from cloud.inventory.tables import session_seats
from cloud.staff.staff import create_staff
from cloud.staff.tokens import create_token
from edge.engine import IdDocument
from edge.reasons import Reason
from sync.identity import mask_name
from sync.sample import resident_id
from sync.timeutil import utcnow
from tests.cloud.buyers.conftest import Idcheck, start_idcheck
from tests.cloud.conftest import hub_url  # noqa: F401
from tests.cloud.messaging.conftest import (
    API_KEY,
    KEYS,
    Gateway,
    Mailbox,
    smtp_server,  # noqa: F401
    start_gateway,
)
from tests.cloud.payments.conftest import stop
from tests.e2e.buyer_processes import HubCommand, links, qr_text
from tests.e2e.conftest import HubProcess, wait_for

MOBILE = "13800138000"
EMAIL = "zhang.san@example.com"
PASSWORD = "Harbour-lamp-2026"
ZHANG = ("张三", "resident_id", resident_id("11010119900307123"))
LI = ("李四", "resident_id", resident_id("31010119851111234"))
SEATS = "level,zone,row,number,category\nL1,A,1,1,std\nL1,A,1,2,std\n"
IDCHECK_TIMEOUT_S = 5  # how long the worker waits for the silent service
WAIT_S = 120           # generous: a loaded machine is slow, never wrong


@dataclass
class Journey:
    """The running processes, the hub's database for set-up and checks, and what the buyer
    and the clerk know."""

    hub: HubProcess
    engine: sa.Engine
    gateway: Gateway
    idcheck: Idcheck
    mailbox: Mailbox
    session: int
    tier: int
    seats: list[int]
    clerk_token: str
    appliance_token: str

    def api(self, method: str, path: str, token: str | None = None, key: bool = False,
            **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if key:
            headers["Idempotency-Key"] = f"journey-{uuid.uuid4()}"
        return requests.request(method, self.hub.url + path, headers=headers, timeout=WAIT_S,
                                **kw)

    def sms_to(self, number: str) -> list[dict]:
        return [r for r in self.gateway.control("GET", "/_sandbox/received")["received"]
                if r["to"] == number]


def _set_up_hub(url: str) -> dict:
    """A real-name session on sale now, with two seats, a gate checking ID cards with tickets,
    a clerk's API token and an appliance's enrollment token."""
    init_db(url)
    engine = make_engine(url)
    now = utcnow()
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "OSC", "Olympic Sports Centre")
        add_zone(conn, venue, "A", "North Stand")
        add_gate(conn, venue, "G1", "Gate 1", ["A"], realname_mode="ticket_and_id")
        assert import_seats_csv(conn, venue, SEATS).ok
        session = create_session(conn, create_event(conn, "CUP", "The Cup"), venue, "Final",
                                 now - timedelta(minutes=10), now + timedelta(hours=3))
        tier = add_price_tier(conn, session, "STD", "Standard", 38000, seat_category="std")
        edit_session(conn, session, real_name=True)
        inventory.confirm_configuration(conn, session)
        inventory.put_on_sale(conn, session)
        clerk = create_staff(conn, "clerk", PASSWORD, "sales", actor="test")
        seats = sorted(conn.execute(sa.select(session_seats.c.seat_id).where(
            session_seats.c.session_id == session)).scalars())
        made = {"session": session, "tier": tier, "seats": seats,
                "clerk_token": create_token(conn, clerk, "till", "test")[1],
                "appliance_token": appliances.register(conn, venue, "Gate box").token}
    engine.dispose()
    return made


@pytest.fixture
def journey(hub_url, smtp_server, tmp_path):  # noqa: F811
    made = _set_up_hub(hub_url)
    hub = HubProcess(hub_url, env=KEYS)  # the receipt key: the gateway signs with it
    with ExitStack() as stack:
        gateway = start_gateway(tmp_path, receipts_url=f"{hub.url}/api/v1/messaging/receipts")
        stack.callback(stop, gateway.process)
        (tmp_path / "idcheck").mkdir()
        process, port = start_idcheck(tmp_path / "idcheck")
        stack.callback(stop, process)
        hub.start()
        stack.callback(hub.stop)
        verifier = {f"WICKET_HUB_{k}": v for k, v in
                    sandbox_settings(tmp_path / "idcheck" / "published").items()}
        worker = HubCommand(hub_url, ["worker", "--poll", "0.1"], {
            **verifier, "WICKET_HUB_IDCHECK_TIMEOUT": str(IDCHECK_TIMEOUT_S)},
            tmp_path / "worker.log")
        stack.callback(worker.stop)
        messenger = HubCommand(hub_url, ["messenger", "--poll", "0.1", "--lease", "60"], {
            "WICKET_HUB_SMS_GATEWAY_URL": gateway.url, "WICKET_HUB_SMS_API_KEY": API_KEY,
            "WICKET_HUB_SMTP_HOST": smtp_server.host,
            "WICKET_HUB_SMTP_PORT": str(smtp_server.port),
            "WICKET_HUB_PUBLIC_URL": hub.url}, tmp_path / "messenger.log")
        stack.callback(messenger.stop)
        engine = make_engine(hub_url)
        stack.callback(engine.dispose)
        yield Journey(hub, engine, gateway, Idcheck(f"http://127.0.0.1:{port}", {}),
                      smtp_server, **made)
        assert worker.stop() == 0, worker.output()
        assert messenger.stop() == 0, messenger.output()


def register(j: Journey) -> tuple[int, str]:
    """Ask for a code, read it from the SMS gateway, register, sign in: (buyer id, token)."""
    r = j.api("POST", "/api/v1/buyer/codes",
              json={"mobile": MOBILE, "purpose": "register", "language": "en"})
    assert r.status_code == 202, r.text
    text = wait_for(lambda: [m["text"] for m in j.sms_to(MOBILE)], WAIT_S, "the code's SMS")[0]
    code = re.search(r"registration code is (\d{6})", text).group(1)
    r = j.api("POST", "/api/v1/buyer/register", key=True, json={
        "mobile": MOBILE, "code": code, "password": PASSWORD, "email": EMAIL,
        "language": "en"})
    assert r.status_code == 201, r.text
    buyer_id = r.json()["buyer"]["id"]
    r = j.api("POST", "/api/v1/buyer/sessions", json={"mobile": MOBILE, "password": PASSWORD})
    assert r.status_code == 201 and r.json()["buyer_id"] == buyer_id, r.text
    return buyer_id, r.json()["token"]


def _verification(j: Journey, token: str) -> str:
    r = j.api("GET", "/api/v1/buyer/me", token)
    assert r.status_code == 200, r.text
    return r.json()["buyer"]["verification"]


def _results_said(j: Journey) -> list[str]:
    """The verification results the buyer was told by SMS, in order."""
    said = {"verified": "verified", "not verified": "refused"}
    return [said[m.group(1)] for m in (
        re.search(r"Identity verification of [^:]+: (verified|not verified)\.", r["text"])
        for r in j.sms_to(MOBILE)) if m]


def _timed_out(j: Journey) -> bool:
    with j.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
            jobs.c.last_error.like("%Timeout%"))).scalar_one() > 0


def verify_buyer(j: Journey, token: str) -> None:
    """The service refuses a mistyped name; the corrected one meets a silent service, which
    the worker gives up waiting for and asks again after its backoff: verified. The buyer
    learns each result by SMS, and their account says it."""
    name, doc_type, number = ZHANG
    j.idcheck.register(number, name)
    r = j.api("POST", "/api/v1/buyer/me/identity", token, key=True,
              json={"name": "张山", "doc_type": doc_type, "doc_number": number})
    assert r.status_code == 202 and r.json()["verification"] == "pending", r.text
    wait_for(lambda: _results_said(j) == ["refused"], WAIT_S, "the refusal's SMS")
    assert _verification(j, token) == "refused"

    j.idcheck.script(number, "silent")
    r = j.api("POST", "/api/v1/buyer/me/identity", token, key=True,
              json={"name": name, "doc_type": doc_type, "doc_number": number})
    assert r.status_code == 202 and r.json()["verification"] == "pending", r.text
    wait_for(lambda: _timed_out(j), WAIT_S, "the worker to give up on the silent service")
    assert _verification(j, token) == "pending"   # nothing was answered: it waits its backoff
    j.idcheck.control("POST", "/_sandbox/release")
    wait_for(lambda: _results_said(j) == ["refused", "verified"], WAIT_S,
             "the verification's SMS")
    assert _verification(j, token) == "verified"
    assert [c["behaviour"] for c in j.idcheck.calls(number)] == ["no_match", "silent", "match"]


def add_companion(j: Journey, token: str) -> None:
    name, doc_type, number = LI
    r = j.api("POST", "/api/v1/buyer/companions", token, key=True,
              json={"name": name, "doc_type": doc_type, "doc_number": number})
    assert r.status_code == 201, r.text
    assert r.json()["companion"]["name"] == mask_name(name)

    def verified() -> bool:
        r = j.api("GET", "/api/v1/buyer/companions", token)
        assert r.status_code == 200, r.text
        return [c["verification"] for c in r.json()["companions"]] == ["verified"]

    wait_for(verified, WAIT_S, "the companion's verification", every=0.5)


def buy(j: Journey, buyer_id: int) -> set[str]:
    """The clerk's API token sells the buyer an order of one seat each for the buyer and the
    companion, paid at the booth: the tickets' codes, as the payment's answer shows them."""
    lines = [{"seat_id": seat, "price_tier_id": j.tier,
              "holder": {"name": h[0], "doc_type": h[1], "doc_number": h[2]}}
             for seat, h in zip(j.seats, (ZHANG, LI), strict=True)]
    r = j.api("POST", f"/api/v1/sessions/{j.session}/orders", j.clerk_token, key=True,
              json={"buyer": f"buyer:{buyer_id}", "lines": lines})
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    r = j.api("POST", f"/api/v1/orders/{number}/payments", j.clerk_token, key=True,
              json={"provider": "offline"})
    assert r.status_code == 200 and r.json()["order_state"] == "paid", r.text
    codes = {t["code"] for t in r.json()["tickets"]}
    assert len(codes) == 2
    return codes


def _ticket_links(j: Journey) -> list[str]:
    return [link for m in j.sms_to(MOBILE) for link in links(m["text"])]


def delivered_links(j: Journey) -> list[str]:
    """The ticket links, one per ticket, as they arrived by SMS and by e-mail."""
    wait_for(lambda: len(_ticket_links(j)) == 2, WAIT_S, "the tickets' SMS")
    wait_for(lambda: len(j.mailbox.messages) == 2, WAIT_S, "the tickets' e-mail")
    sms, mail = _ticket_links(j), []
    for message in j.mailbox.messages:
        assert (message["To"], message["Subject"]) == (EMAIL, "Your ticket")
        mail += links(message.get_payload(decode=True).decode())
    assert sorted(mail) == sorted(sms) and len(set(sms)) == 2, (sms, mail)
    assert all(link.startswith(j.hub.url + "/t/") for link in sms)
    return sms


def shown_codes(j: Journey) -> dict[str, tuple[str, str, str]]:
    """Each link's page: the code its QR code holds, and whose ticket it is (the holder is
    shown masked, never in full): {code: holder}."""
    shown = {}
    for link in delivered_links(j):
        page = requests.get(link, timeout=WAIT_S)
        assert page.status_code == 200
        named = [h for h in (ZHANG, LI) if mask_name(h[0]) in page.text]
        assert len(named) == 1 and named[0][0] not in page.text, page.text
        shown[qr_text(page.text)] = named[0]
    return shown


def _messages(j: Journey) -> Counter:
    with j.engine.connect() as conn:
        return Counter(conn.execute(sa.select(outbox.c.channel, outbox.c.state)).all())


# on PostgreSQL, the production database: the same journey on the public site's pages runs on
# SQLite (tests/e2e/test_storefront_journey.py), and every rule it crosses is tested on both
@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)
def test_a_buyer_registers_is_verified_buys_for_a_companion_and_both_walk_in_once(
        journey, make_appliance):
    j = journey
    buyer_id, token = register(j)
    verify_buyer(j, token)
    add_companion(j, token)
    sold = buy(j, buyer_id)
    holders = shown_codes(j)
    assert set(holders) == sold
    assert sorted(holders.values()) == sorted((ZHANG, LI))

    box = make_appliance()
    r = box.cli("enroll", "--hub", j.hub.url, "--token", j.appliance_token)
    assert r.returncode == 0, r.stderr
    r = box.cli("sync", "--once")
    assert r.returncode == 0, r.stderr
    box.add_lane()
    code_of = {h: code for code, h in holders.items()}
    buyers_card = IdDocument(ZHANG[1], ZHANG[2], ZHANG[0])
    assert box.scan(code_of[LI], document=buyers_card).reason is Reason.REALNAME_MISMATCH
    for name, doc_type, number in (ZHANG, LI):
        card = IdDocument(doc_type, number, name)
        assert box.scan(code_of[(name, doc_type, number)], document=card).reason is Reason.OK
        assert box.scan(code_of[(name, doc_type, number)], document=card).reason \
            is Reason.ALREADY_ENTERED
    r = box.cli("sync", "--once")
    assert r.returncode == 0, r.stderr
    with j.engine.connect() as conn:
        admitted = conn.execute(sa.text("SELECT t.code FROM entries e JOIN tickets t ON "
                                        "t.id = e.ticket_id WHERE e.admitted")).scalars().all()
    assert sorted(admitted) == sorted(sold)  # the hub heard of each entry, once

    # every message the journey caused went out once, and its receipt came back
    expected = {("sms", "delivered"): 5, ("email", "sent"): 2}
    try:
        wait_for(lambda: _messages(j) == expected, WAIT_S, "every message sent and delivered")
    except AssertionError:
        raise AssertionError(f"{_messages(j)} != {expected}") from None
    assert j.gateway.control("GET", "/_sandbox/received")["duplicates"] == 0
