"""Distribution end to end against real processes: the hub (``wicket-hub serve``) and two
appliances (``wicket-edge``), one at a scenic spot and one at another site.

A distributor, bound to the spot's day ticket by a sales code at an agreed price below the
list price and given credit, orders two day tickets through the partner API — every request
signed with its key, the order confirmed (paid from its account) in the same call. A retry of
the call with its idempotency key answers the same order and charges nothing more; the same
signed request sent again is refused as a replay. The spot's appliance, after its next sync,
admits each ticket once; the other site's appliance never received them and refuses them.
The distributor, signed in to the partners' portal, sees its products at the agreed price and
the order on its credit statement at that price.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import time as pytime
import uuid
from datetime import datetime, time, timedelta

import requests

from cloud.channels.accounts import set_credit_limit
from cloud.channels.api_keys import create_key
from cloud.channels.channels import create_channel
from cloud.channels.partner_terms import add_price, bind, code_id_of, create_code
from cloud.channels.products_admin import add_day_product, set_daily_stock
from cloud.channels.signing import signed_headers
from cloud.ledger.partners import add_portal_user, create_partner
from edge.reasons import Reason
from sync.timeutil import CHINA, utcnow

PASSWORD = "Harbour-lamp-2026"
LIST_PRICE, AGREED = 12000, 9000


def sync(box) -> None:
    r = box.cli("sync", "--once")
    assert r.returncode == 0, r.stderr


def clear_of_midnight(margin_s: int = 180) -> None:
    """The tickets are for today in China and admit until its midnight: a run begun just
    before it starts just after it instead (it would order for a day that ends mid-test)."""
    now = datetime.now(CHINA)
    left = (datetime.combine(now.date() + timedelta(days=1), time(), CHINA) - now)
    if left.total_seconds() < margin_s:
        pytime.sleep(left.total_seconds() + 1)


def set_up(hub) -> dict:
    clear_of_midnight()
    lake, park = hub.add_venue("LAKE"), hub.add_venue("PARK")
    now = utcnow()
    today = now.astimezone(CHINA).date()
    with hub.begin() as conn:
        ticket = add_day_product(conn, "LAKE-DAY", "West Lake day ticket", LIST_PRICE,
                                 venue_id=lake["id"], actor="test")
        set_daily_stock(conn, ticket, today, today + timedelta(days=1), 50, "test", now)
        supplier = create_partner(conn, "LAKECO", "West Lake Co", "supplier", 0, "test", now)
        travel = create_partner(conn, "SUNNY", "Sunny Travel", "distributor", 0, "test", now)
        code = create_code(conn, supplier, ticket, "West Lake day", "test", now)
        bind(conn, code_id_of(conn, code), travel, "test", now)
        add_price(conn, travel, product_id=ticket, amount=AGREED, effective_from=now,
                  actor="test", now=now)
        set_credit_limit(conn, travel, 100000, "test", now)
        channel = create_channel(conn, "sunny-api", "Sunny Travel API", "api",
                                 partner_id=travel, actor="test", now=now)
        key_id, secret = create_key(conn, travel, channel, "booking system",
                                    ["products:read", "orders:write", "orders:read"], 600,
                                    "test", now)
        add_portal_user(conn, travel, "sunny", "Sunny finance", PASSWORD, "test", now)
    return {"lake": lake, "park": park, "ticket": ticket, "key": (key_id, secret),
            "day": today.isoformat()}


def signed(hub, key, method: str, path: str, body: dict | None = None, *,
           idempotency: str | None = None, nonce: str | None = None):
    raw = json.dumps(body).encode() if body is not None else b""
    headers = signed_headers(key[0], key[1], method, path, raw, int(utcnow().timestamp()),
                             nonce or secrets.token_hex(16))
    if body is not None:
        headers["Content-Type"] = "application/json"
    if idempotency:
        headers["Idempotency-Key"] = idempotency
    r = requests.request(method, hub.process.url + path, data=raw, headers=headers,
                         timeout=30)
    return r, headers


def portal(hub) -> requests.Session:
    s = requests.Session()
    page = s.get(f"{hub.process.url}/partner/sign-in", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(f"{hub.process.url}/partner/sign-in", timeout=30, data={
        "csrf_token": token, "username": "sunny", "password": PASSWORD})
    assert r.status_code == 200 and "sign-in" not in r.url, r.status_code
    return s


def test_a_distributor_orders_day_tickets_admitted_only_at_their_spot(hub, make_appliance):
    w = set_up(hub)
    path = "/api/partner/v1/orders"
    order = {"lines": [{"product_id": w["ticket"], "day": w["day"], "quantity": 2}],
             "confirm": True}
    products, _ = signed(hub, w["key"], "GET", "/api/partner/v1/products")
    assert products.status_code == 200, products.text
    assert [(p["id"], p["price"]) for p in products.json()["products"]] == [
        (w["ticket"], AGREED)]

    idem = str(uuid.uuid4())
    made, sent = signed(hub, w["key"], "POST", path, order, idempotency=idem)
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["state"], body["total"]) == ("paid", 2 * AGREED)
    assert [line["amount"] for line in body["lines"]] == [AGREED, AGREED]
    again, _ = signed(hub, w["key"], "POST", path, order, idempotency=idem)
    assert again.status_code == 201 and again.json() == body
    replay = requests.post(hub.process.url + path, data=json.dumps(order).encode(),
                           headers=sent, timeout=30)
    assert replay.status_code == 401 and replay.json()["error"] == "api_request_replayed"

    codes = [line["ticket"]["code"] for line in body["lines"]]
    spot, other = make_appliance("lake"), make_appliance("park")
    for box, venue in ((spot, w["lake"]), (other, w["park"])):
        r = box.cli("enroll", "--hub", hub.process.url, "--token", hub.token(venue))
        assert r.returncode == 0, r.stderr
        sync(box)
        box.add_lane()
    assert [spot.scan(c).reason for c in codes] == [Reason.OK, Reason.OK]
    assert other.scan(codes[0]).reason in (Reason.UNKNOWN, Reason.WRONG_SESSION)

    s = portal(hub)
    terms = s.get(f"{hub.process.url}/partner/terms/products", timeout=30)
    assert terms.status_code == 200 and "90.00" in terms.text and "120.00" not in terms.text
    month = utcnow().astimezone(CHINA).strftime("%Y-%m")
    statement = s.get(f"{hub.process.url}/partner/account/statement.csv",
                      params={"month": month}, timeout=30)
    assert statement.status_code == 200, statement.text
    rows = list(csv.DictReader(io.StringIO(statement.text)))
    charged = [r for r in rows if r["kind"] not in ("opening", "closing")]
    assert [r["charged"] for r in charged] == ["180.00"]  # 2 × the agreed 90.00, once
    assert [r for r in rows if r["kind"] == "closing"][0]["charged"] == "180.00"
