"""Every GET route of the hub, signed in as an admin over sample data (tickets, entries, a
conflict, an alert, a wall-display link), answers hostile query strings with 4xx, never 5xx:
a bad argument is refused naming the field, not a traceback. See tests/webfuzz.py."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from cloud.catalog.tables import sessions
from cloud.catalog.venues import add_lane
from cloud.channels.channels import create_channel
from cloud.channels.webhooks import register_webhook
from cloud.fleet import appliances
from cloud.ledger.partners import create_partner
from cloud.lottery.presales import create_presale  # presale lottery (issue 18)
from cloud.ops import alerts
from cloud.sales.flags import add_flag
from cloud.sales.tickets import issue_ticket
from cloud.staff.tokens import create_token
from cloud.storefront.content import Draft, create_item, submit_item  # content (issue 17 §3)
from sync.ids import uuid7
from sync.sample import resident_id
from sync.timeutil import to_iso, utcnow
from tests.cloud.channels.customerkit import customer_sample  # contract customers (issue 20)
from tests.cloud.ledger.ledgerpages import ledger_sample  # the ledger (issue 19)
from tests.cloud.pagekit import build_hub, text
from tests.webfuzz import concrete_paths, fuzz


def sample_hub(url: str):
    hub = build_hub(url)
    with hub.engine.begin() as conn:
        add_lane(conn, hub.venue, "G1", "L1")
        now = utcnow()
        conn.execute(sa.update(sessions).where(sessions.c.id == hub.session).values(
            starts_at=now + timedelta(minutes=30), ends_at=now + timedelta(hours=3)))
        tickets = [issue_ticket(conn, session_id=hub.session) for _ in range(3)]
        boxes = [appliances.register(conn, hub.venue, f"Gate box {n}") for n in (1, 2)]
        _, token = create_token(conn, hub.staff["admin"], "fuzz", "test")
        add_flag(conn, blocks="entry", reason="fuzz", actor="test",  # flags (issue 16 §4)
                 holder=("resident_id", resident_id("11010119900307123")))
        item_id = create_item(conn, "news", Draft(title_en="Fuzz"), "test")  # content
        submit_item(conn, item_id, "test")
        create_presale(conn, event_id=1, name="Fuzz presale", opens_at=now,  # presale lottery
                       closes_at=now + timedelta(hours=1), actor="test")
        ledger_sample(conn, now)  # the ledger (issue 19)
        create_channel(conn, "north", "North booth", "booth", actor="test",  # booths
                       now=now)
        customer_sample(conn, now)  # contract customers (issue 20)
        hub.distributor = create_partner(conn, "FUZZD", "Fuzz Distributor",  # accounts
                                         "distributor", 0, "test", now)
        register_webhook(conn, hub.distributor, "https://ota.example/hook",
                         ["order.confirmed"], "test", now)
    client = hub.app.test_client()
    creds = [client.post("/api/sync/v1/enroll", json={"token": b.token}).get_json()["credential"]
             for b in boxes]
    entry = {"id": "", "seq": 1, "at": to_iso(utcnow()), "lane": "L1", "direction": "in",
             "ticket_id": tickets[0].id, "session_id": hub.session, "admitted": True,
             "reason": "OK", "cursor": 1}
    for cred in creds:  # the same ticket admitted by two boxes: a conflict
        r = client.post("/api/sync/v1/entries", json={"entries": [{**entry, "id": str(uuid7())}]},
                        headers={"Authorization": f"Appliance {cred}"})
        assert r.status_code == 200
    with hub.engine.begin() as conn:
        alerts.evaluate(conn)
    return hub, tickets, boxes, token, creds


def test_no_query_string_makes_any_hub_page_or_api_fail(hub_url):
    hub, tickets, boxes, token, creds = sample_hub(hub_url)
    admin = hub.client("admin")
    paths = concrete_paths(hub.app, {
        "venue_id": str(hub.venue), "gate_id": "1", "session_id": str(hub.session),
        "number": tickets[0].number, "appliance_id": str(boxes[0].id), "key_id": "1",
        "tickets.confirm_revoke.action": "refund", "appliances.confirm.action": "revoke",
        "token": "not-a-link", "staff_id": str(hub.staff["sales"]), "token_id": "1",
        "staff.confirm.what": "disable", "request_id": "1",
        "refunds.confirm.decision": "approve",
        # identity (issue 16 §2)
        "identity_id": "1", "identity_review.confirm.decision": "approve",
        # messaging (issue 16)
        "message_id": "1", "task_id": "1", "kind": "sign_in_code", "language": "en",
        # flags (issue 16 §4)
        "flag_id": "1",
        # content (issue 17 §3)
        "item_id": "1", "image_id": "1", "content.revision.number": "1",
        "content.new.kind": "news", "content.confirm.action": "publish",
        # storefront (issue 17 §1): the public site's language and a zone
        "lang": "zh", "code": "en", "zone_id": "1", "event_id": "1", "companion_id": "1",
        # the presale's public pages (issue 18)
        "shop.presale_page.presale_id": "1", "shop.presale_list.presale_id": "1",
        "shop.presale_results.presale_id": "1", "shop.apply_page.presale_id": "1",
        "shop.seats_page.number": "P7QK4M2P9W3D",
        # presale lottery (issue 18)
        "presale_id": "1", "presales.confirm.action": "freeze",
        "presales.confirm_draw.action": "draw",
        # the ledger (issue 19)
        "account_id": "1", "entry_id": "1", "statement_id": "1", "fmt": "csv",
        "partner_id": "1", "run_id": "1", "rule_id": "1", "user_id": "1",
        "exception_id": "1", "finance.confirm_resolve.action": "adjust",
        "partner_keys.confirm.action": "revoke",
        # booths (issue 20)
        "channel_id": "1",
        # partners' terms (issue 20)
        "price_id": "1", "code_id": "1", "product_id": "1",
        # contract customers (issue 20)
        "customer_id": "1", "rep_id": "1",
        # partners' accounts (issue 20): a distributor's pages and its webhook
        **{f"channel_accounts.{e}.partner_id": str(hub.distributor)
           for e in ("partner", "statement", "statement_download", "confirm_disable")},
        "webhook_id": "1",
        },
        skip=("static",))

    def headers(path: str) -> dict:
        if path.startswith("/api/sync/"):
            return {"Authorization": f"Appliance {creds[0]}"}
        if path.startswith("/api/"):
            return {"Authorization": f"Bearer {token}"}
        return {}

    failures = fuzz(hub.app, admin, paths, headers)
    assert not failures, "\n".join(failures)
    admin.delete_cookie("wicket_lang")  # the public site's language switch remembered one
    # a refused argument is named on the page, in the page's language
    r = admin.get("/ops?session=99999999999999999999")
    assert r.status_code == 400 and "session=99999999999999999999" in text(r)
    r = admin.get("/appliances?venue=²", headers={"Accept-Language": "zh"})
    assert r.status_code == 400 and "venue=²" in text(r) and "整数" in text(r)
    assert admin.get("/ops/conflicts?show=everything").status_code == 400
    assert admin.get(f"/ops?session={hub.session}&view=x").status_code == 200
    hub.engine.dispose()
