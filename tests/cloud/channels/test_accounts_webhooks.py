"""Partners' webhooks on both databases: a delivery is signed with the endpoint's secret,
POSTed to a real local HTTP server, and tried again after its backoff when the first attempt
is refused; a disabled endpoint is told nothing; an admission at a gate of a ticket of a
partner's order becomes one ``ticket.used`` after the stored cursor."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from cloud.channels import webhooks
from cloud.channels.tables import channels
from cloud.channels.webhooks import WebhookError
from cloud.core import jobs
from cloud.fleet.tables import appliances, entries
from cloud.sales.tables import orders, tickets
from tests.cloud.channels.accountkit import DISTRIBUTOR, PRICE, account_hub, partner_orders
from tests.cloud.ledger.ledgerkit import pay
from tests.cloud.orderkit import NOW

D = DISTRIBUTOR


class Endpoint:
    """A partner's endpoint on this machine: answers 500 to the first ``fail`` requests, then
    204; keeps every request it got."""

    def __init__(self, fail: int = 1):
        self.got: list[dict] = []
        self.fail = fail
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                endpoint.got.append({"path": self.path, "headers": dict(self.headers),
                                     "body": body})
                self.send_response(500 if len(endpoint.got) <= endpoint.fail else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/wicket"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def hub(hub_url):
    hub, second = account_hub(hub_url)
    hub.second = second
    yield hub
    hub.engine.dispose()


@pytest.fixture
def endpoint():
    e = Endpoint(fail=1)
    yield e
    e.close()


def worker() -> jobs.Tasks:
    tasks = jobs.Tasks()
    webhooks.register_tasks(tasks, timeout=5)
    return tasks


def test_a_delivery_is_signed_and_tried_again_after_a_refusal(hub, endpoint):
    with hub.engine.begin() as conn:
        hook = webhooks.register_webhook(conn, D, endpoint.url, ["order.confirmed"], "t", NOW,
                                         allow_local=True)
        assert webhooks.notify(conn, D, "order.refunded", {"order": "X"}, NOW) == []
        [job_id] = webhooks.notify(conn, D, "order.confirmed", {"order": "W123"}, NOW)
    tasks = worker()
    first = jobs.run_one(hub.engine, tasks, "w", NOW)
    assert first is not None and first[1] == "waiting"  # refused: tried again later
    assert jobs.run_one(hub.engine, tasks, "w", NOW + timedelta(seconds=5)) is None  # backoff
    later = NOW + timedelta(seconds=11)
    assert jobs.run_one(hub.engine, tasks, "w", later)[1] == "done"
    assert len(endpoint.got) == 2
    one, two = endpoint.got
    assert one["body"] == two["body"]
    h = two["headers"]
    assert h["X-Wicket-Event"] == "order.confirmed"
    assert h["X-Wicket-Delivery"] == one["headers"]["X-Wicket-Delivery"]
    assert h["X-Wicket-Timestamp"] == str(int(later.timestamp()))
    assert h["X-Wicket-Signature"] == hmac.new(
        hook["secret"].encode(), f"{h['X-Wicket-Timestamp']}.{two['body']}".encode(),
        hashlib.sha256).hexdigest()
    body = json.loads(two["body"])
    assert (body["event"], body["data"]) == ("order.confirmed", {"order": "W123"})
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(jobs.jobs.c.state, jobs.jobs.c.attempts)
                            .where(jobs.jobs.c.id == job_id)).one() == ("done", 2)


def test_a_disabled_webhook_is_told_nothing(hub, endpoint):
    with hub.engine.begin() as conn:
        hook = webhooks.register_webhook(conn, D, endpoint.url, ["order.refunded"], "t", NOW,
                                         allow_local=True)
        webhooks.notify(conn, D, "order.refunded", {"order": "W1"}, NOW)
        webhooks.disable_webhook(conn, D, hook["id"], "t", NOW)
        assert webhooks.notify(conn, D, "order.refunded", {"order": "W2"}, NOW) == []
        assert [w["state"] for w in webhooks.webhooks_of(conn, D)] == ["disabled"]
    assert jobs.run_one(hub.engine, worker(), "w", NOW)[1] == "done"  # dropped, not sent
    assert endpoint.got == []
    with pytest.raises(WebhookError) as e, hub.engine.begin() as conn:
        webhooks.disable_webhook(conn, D + 1, hook["id"], "t", NOW)
    assert e.value.code == "unknown_webhook"


BAD_HOOKS = [
    ("http://partner.example/hook", ["order.confirmed"], "url"),  # not https
    ("https://user:pw@partner.example/hook", ["order.confirmed"], "url"),
    ("ftp://partner.example/hook", ["order.confirmed"], "url"),
    ("https://partner.example/hook", [], "events"),
    ("https://partner.example/hook", ["order.paid"], "events"),
    ("https://partner.example/hook", "order.confirmed", "events"),
]


def test_a_webhook_is_https_with_known_events(hub):
    refusals = []
    for url, events, _field in BAD_HOOKS:
        try:
            with hub.engine.begin() as conn:
                webhooks.register_webhook(conn, D, url, events, "t", NOW)
            refusals.append(None)
        except WebhookError as e:
            refusals.append(e.params)
    assert refusals == [{"field": field} for _, _, field in BAD_HOOKS]


def test_an_admission_of_a_partners_ticket_is_told_once_after_the_cursor(hub, endpoint):
    [mine, other] = partner_orders(hub, hub.second, 2)
    with hub.engine.begin() as conn:
        channel = conn.execute(sa.insert(channels).values(
            code="TRAVEL", name="Travel", kind="distributor", partner_id=D, created_by="t",
            created_at=NOW).returning(channels.c.id)).scalar_one()
        conn.execute(sa.update(orders).where(orders.c.id == mine).values(channel_id=channel))
        for order_id in (mine, other):
            pay(conn, order_id, PRICE, NOW)
        webhooks.register_webhook(conn, D, endpoint.url, ["ticket.used"], "t", NOW,
                                  allow_local=True)
        appliance = conn.execute(sa.insert(appliances).values(
            venue_id=hub.venue, name="Gate 1", state="active", created_at=NOW)
            .returning(appliances.c.id)).scalar_one()
        assert webhooks.notify_used_tickets(conn, NOW) == 0  # the first turn: from now on
        for n, order_id in enumerate((mine, other)):
            ticket = conn.execute(sa.select(tickets.c.id, tickets.c.number)
                                  .where(tickets.c.order_id == order_id)).first()
            conn.execute(sa.insert(entries).values(
                id=str(uuid.UUID(int=n + 1)), appliance_id=appliance, venue_id=hub.venue,
                seq=n + 1, at=NOW, direction="in", ticket_id=ticket.id, admitted=True,
                reason="ok", cursor=n + 1, received_at=NOW + timedelta(seconds=1)))
            if order_id == mine:
                number = ticket.number
        # not yet a minute old: a push still committing could be received earlier
        assert webhooks.notify_used_tickets(conn, NOW + timedelta(seconds=30)) == 0
        assert webhooks.notify_used_tickets(conn, NOW + timedelta(minutes=2)) == 1
        assert webhooks.notify_used_tickets(conn, NOW + timedelta(minutes=3)) == 0
    endpoint.fail = 0
    assert jobs.run_one(hub.engine, worker(), "w", NOW + timedelta(minutes=3))[1] == "done"
    [got] = endpoint.got
    body = json.loads(got["body"])
    assert (body["event"], body["data"]["ticket"]) == ("ticket.used", number)
