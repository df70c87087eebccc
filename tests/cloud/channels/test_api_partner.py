"""The partner API over HTTP on the test client, on both databases: signed calls answered,
each refusal with its status and code (429 with Retry-After), the access log, a retried write
answered with the first answer, fields named when refused, and the OpenAPI document equal to
the routes served."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa

from cloud.channels import signing
from cloud.channels.partner_openapi import document
from cloud.channels.tables import API_SCOPES, api_access_log, api_keys
from cloud.sales.tables import orders
from tests.cloud.channels.apikit import AGREED, api_hub

V1 = "/api/partner/v1"


@pytest.fixture
def hub(hub_url):
    h = api_hub(hub_url)
    yield h
    h.engine.dispose()


def _log(hub, key_id: str) -> list[tuple]:
    with hub.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(api_access_log.c.method, api_access_log.c.path, api_access_log.c.status,
                      api_access_log.c.code)
            .join(api_keys, api_keys.c.id == api_access_log.c.api_key_id)
            .where(api_keys.c.key_id == key_id).order_by(api_access_log.c.id))]


def _order_count(hub) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()


def test_a_signed_call_is_answered_and_logged(hub):
    api = hub.client()
    r = api.get(f"{V1}/ping")
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"key_id": hub.key_id, "partner_id": hub.partner,
                            "channel_id": hub.channel, "scopes": list(API_SCOPES)}
    products = api.get(f"{V1}/products").get_json()["products"]
    assert [(p["id"], p["price"]) for p in products] == [(hub.day_ticket, AGREED)]
    day = hub.today().isoformat()
    path = f"{V1}/products/{hub.day_ticket}/availability?from={day}&days=2"
    assert api.get(path).get_json()["days"][0] == {"day": day, "available": 5}
    assert _log(hub, hub.key_id) == [("GET", f"{V1}/ping", 200, None),
                                     ("GET", f"{V1}/products", 200, None),
                                     ("GET", path, 200, None)]


def test_each_refusal_has_its_status_and_code_and_a_known_key_logs_it(hub):
    api = hub.client()
    path = f"{V1}/ping"
    refused = {
        "unsigned": api.get(path, headers={}),
        "unknown": hub.client(key_id="wk_nobody").get(path),
        "bad signature": api.get(path, secret="not the secret"),
        "stale": api.get(path, timestamp=int(time.time()) - signing.WINDOW_S - 5),
    }
    fixed = api.headers("GET", path, nonce="replayed-nonce-01")
    assert api.get(path, headers=fixed).status_code == 200
    refused["replay"] = api.get(path, headers=fixed)
    reader_id, reader_secret = hub.key(scopes=["products:read"])
    refused["scope"] = hub.client(reader_id, reader_secret).get(f"{V1}/orders")
    expected = {"unsigned": (401, "api_request_unsigned"), "unknown": (401, "api_key_unknown"),
                "bad signature": (401, "api_signature_wrong"),
                "stale": (401, "api_request_stale"), "replay": (401, "api_request_replayed"),
                "scope": (403, "api_scope_missing")}
    assert {k: (r.status_code, r.get_json()["error"]) for k, r in refused.items()} == expected
    assert [code for *_, code in _log(hub, hub.key_id)] == [
        "api_signature_wrong", "api_request_stale", None, "api_request_replayed"]
    assert _log(hub, reader_id) == [("GET", f"{V1}/orders", 403, "api_scope_missing")]


def test_a_revoked_key_is_refused(hub):
    from cloud.channels.api_keys import revoke_key
    from sync.timeutil import utcnow

    with hub.engine.begin() as conn:
        revoke_key(conn, hub.partner, hub.key_id, "t", utcnow())
    r = hub.client().get(f"{V1}/ping")
    assert (r.status_code, r.get_json()["error"]) == (401, "api_key_revoked")
    assert _log(hub, hub.key_id) == [("GET", f"{V1}/ping", 401, "api_key_revoked")]


def test_a_key_over_its_limit_gets_429_with_retry_after(hub):
    key_id, secret = hub.key(per_minute=3)
    api = hub.client(key_id, secret)
    statuses = [api.get(f"{V1}/ping").status_code for _ in range(3)]
    over = api.get(f"{V1}/ping")
    assert statuses == [200, 200, 200] and over.status_code == 429
    assert over.get_json()["error"] == "api_key_rate_limited"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert _log(hub, key_id)[-1] == ("GET", f"{V1}/ping", 429, "api_key_rate_limited")


def _hold(hub, quantity: int = 2) -> dict:
    return {"lines": [{"product_id": hub.day_ticket, "day": hub.today().isoformat(),
                       "quantity": quantity}]}


def test_a_retried_order_answers_the_first_answer_and_holds_once(hub):
    api = hub.client()
    first = api.post(f"{V1}/orders", _hold(hub), idem="order-0001")
    assert first.status_code == 201, first.get_json()
    again = api.post(f"{V1}/orders", _hold(hub), idem="order-0001")  # a new nonce, same key
    assert again.status_code == 201 and again.data == first.data
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _order_count(hub) == 1
    body = first.get_json()
    assert body["state"] == "pending_payment" and body["total"] == 2 * AGREED
    other = api.post(f"{V1}/orders", _hold(hub, 1), idem="order-0001")
    assert (other.status_code, other.get_json()["error"]) == (422, "idempotency_key_reused")
    # another key of the same partner has keys of its own
    second_id, second_secret = hub.key()
    mine = hub.client(second_id, second_secret).post(f"{V1}/orders", _hold(hub, 1),
                                                     idem="order-0001")
    assert mine.status_code == 201 and mine.get_json()["number"] != body["number"]


def test_a_write_without_an_idempotency_key_is_refused_and_holds_nothing(hub):
    r = hub.client().post(f"{V1}/orders", _hold(hub))
    assert (r.status_code, r.get_json()["error"]) == (400, "idempotency_key_bad")
    assert _order_count(hub) == 0


BAD_ORDERS = [
    ({}, "lines"),
    ({"lines": []}, "lines"),
    ({"lines": [{"product_id": 1, "quantity": 0}]}, "lines.0.quantity"),
    ({"lines": [{"product_id": 1, "quantity": 1, "day": "2026-02-30"}]}, "lines.0.day"),
    ({"lines": [{"product_id": 1, "quantity": 1, "colour": "red"}]}, "lines.0.colour"),
    ({"lines": [{"session_id": 1, "quantity": 1}]}, "lines.0.price_tier_id"),
    ({"lines": [{"product_id": 1, "quantity": 1, "holders": [{"name": "A"}]}]},
     "lines.0.holders.0.doc_type"),
    ({"lines": [{"product_id": 1, "quantity": 1}], "confirm": "yes"}, "confirm"),
]


def test_a_bad_field_is_named_and_nothing_is_held(hub):
    answers = []
    for i, (body, _field) in enumerate(BAD_ORDERS):
        r = hub.client().post(f"{V1}/orders", body, idem=f"bad-{i}")
        answers.append((r.status_code, r.get_json()["error"],
                        r.get_json().get("params", {}).get("field")))
    assert answers == [(400, "bad_request", field) for _, field in BAD_ORDERS]
    assert _order_count(hub) == 0


BAD_QUERIES = [("from=tomorrow", "from"), ("days=0", "days"), ("days=32", "days"),
               ("days=-1", "days")]


def test_a_bad_query_argument_is_named(hub):
    answers = []
    for query, _field in BAD_QUERIES:
        r = hub.client().get(f"{V1}/products/{hub.day_ticket}/availability?{query}")
        answers.append((r.status_code, r.get_json()["params"].get("field")))
    assert answers == [(400, field) for _, field in BAD_QUERIES]


def test_orders_are_read_and_cancelled_by_their_partner_only(hub):
    api = hub.client()
    number = api.post(f"{V1}/orders", _hold(hub), idem="o-1").get_json()["number"]
    listed = api.get(f"{V1}/orders").get_json()
    assert [o["number"] for o in listed["orders"]] == [number] and listed["next_before"] is None
    assert api.get(f"{V1}/orders/{number}").get_json()["state"] == "pending_payment"
    rival_id, rival_secret = hub.key(partner=hub.rival, channel=hub.rival_channel)
    rival = hub.client(rival_id, rival_secret)
    assert rival.get(f"{V1}/orders/{number}").status_code == 404
    assert rival.post(f"{V1}/orders/{number}/cancel", idem="c-1").status_code == 404
    assert rival.get(f"{V1}/orders").get_json()["orders"] == []
    done = api.post(f"{V1}/orders/{number}/cancel", idem="c-1")
    assert done.status_code == 200 and done.get_json()["state"] == "cancelled", done.get_json()
    day = hub.today().isoformat()
    left = api.get(f"{V1}/products/{hub.day_ticket}/availability?from={day}&days=1")
    assert left.get_json()["days"] == [{"day": day, "available": 5}]


def test_the_openapi_document_lists_exactly_the_routes_served(hub):
    served = set()
    for rule in hub.app.url_map.iter_rules():
        if rule.rule.startswith(V1 + "/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            served |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    spec = document()
    assert {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops} == served
    r = hub.app.test_client().get(f"{V1}/openapi.json")
    assert r.status_code == 200 and r.get_json() == spec
    scopes = {op.get("x-wicket-scope") for ops in spec["paths"].values() for op in ops.values()}
    assert scopes == set(API_SCOPES) | {None}
