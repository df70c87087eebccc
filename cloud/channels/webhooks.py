"""Partners' webhooks: an OTA's endpoint told when one of its orders is confirmed or refunded
and when one of its tickets is used at a gate, so that it keeps its copy in step.

- A partner registers an endpoint (``https``; plain ``http`` only to this machine, for tests
  and a partner's own trials when the caller allows it) for some of the events
  :data:`~cloud.channels.tables.WEBHOOK_EVENTS`; its secret is made here, shown once and kept
  sealed. A disabled endpoint is told nothing more.
- :func:`notify`, in the transaction of the event, writes one delivery per active endpoint
  that asked for the event: a job (``cloud/core/jobs.py``) of kind :data:`DELIVERY_JOB`, so it
  exists exactly when the event committed.
- The worker delivers it (:func:`deliver`, with no transaction open while it waits on the
  partner): the JSON body POSTed with ``X-Wicket-Event``, ``X-Wicket-Delivery`` (the same on
  every attempt: the partner drops a repeat), ``X-Wicket-Timestamp`` (Unix seconds) and
  ``X-Wicket-Signature``, the hex HMAC-SHA256 under the endpoint's secret of
  ``timestamp + "." + body``. A 2xx answer is delivered; anything else or no answer in time is
  a failure the job's backoff tries again (10 s, 20 s, 40 s … up to its last attempt).
- ``ticket.used``: :func:`notify_used_tickets`, a periodic task, reads the gates' entries
  received since its stored cursor that admitted a ticket of a partner's order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa

from cloud.channels.accounts import topped_up_online
from cloud.channels.tables import WEBHOOK_EVENTS, channels, partner_webhooks
from cloud.core import jobs
from cloud.core.audit import record
from cloud.core.changes import store_cursor, stored_cursor
from cloud.core.errors import Code, HubError
from cloud.core.seal import context, keyring_for
from cloud.fleet.tables import entries
from cloud.ledger.errors import LedgerError
from cloud.ledger.tables import partners
from cloud.sales.orders import TOPUP_PAID_JOB
from cloud.sales.tables import orders, tickets
from sync.timeutil import to_iso

log = logging.getLogger(__name__)

DELIVERY_JOB = "channels.webhook"
USED_TASK = "webhook_ticket_used"
CURSOR = "cursor:webhook_ticket_used"
# an entry is read once it is this old: a push that received it has committed by then, so
# the cursor never passes over an entry that commits late
SETTLE = timedelta(minutes=1)
WINDOW = timedelta(minutes=10)  # at most this much of the entries in one turn
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
MAX_WEBHOOKS = 10


class WebhookError(HubError):
    """A webhook the rules refuse."""

    codes = {
        "unknown_webhook": Code(404, "partner %(partner_id)s has no webhook %(webhook_id)s"),
        "bad_webhook": Code(422, "%(field)s is missing or not valid"),
    }


def _checked_url(url: Any, allow_local: bool) -> str:
    if not isinstance(url, str) or len(url) > 300 or any(c.isspace() for c in url):
        raise WebhookError("bad_webhook", field="url")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise WebhookError("bad_webhook", field="url") from None
    local = allow_local and parts.scheme == "http" and parts.hostname in LOCAL_HOSTS
    if not (parts.scheme == "https" or local) or not parts.hostname or parts.username \
            or parts.password or parts.fragment:
        raise WebhookError("bad_webhook", field="url")
    return url


def _checked_events(events: Any) -> list[str]:
    if not isinstance(events, (list, tuple)) or not events \
            or any(e not in WEBHOOK_EVENTS for e in events):
        raise WebhookError("bad_webhook", field="events")
    return sorted(set(events))


def _where(webhook_id: int) -> str:
    return context("partner_webhooks", webhook_id, "secret")


def register_webhook(conn: sa.Connection, partner_id: int, url: str, events: list[str],
                     actor: str, now: datetime, *, allow_local: bool = False) -> dict:
    """A new endpoint for the partner: its id and its secret (shown this once)."""
    if conn.execute(sa.select(partners.c.id).where(partners.c.id == partner_id)).first() \
            is None:
        raise LedgerError("unknown_partner", partner_id=partner_id)
    url, events = _checked_url(url, allow_local), _checked_events(events)
    active = conn.execute(sa.select(sa.func.count()).select_from(partner_webhooks).where(
        partner_webhooks.c.partner_id == partner_id,
        partner_webhooks.c.state == "active")).scalar()
    if active >= MAX_WEBHOOKS:
        raise WebhookError("bad_webhook", field="url")
    secret = secrets.token_hex(32)
    webhook_id = conn.execute(sa.insert(partner_webhooks).values(
        partner_id=partner_id, url=url, sealed_secret="", events=events, state="active",
        created_by=actor, created_at=now).returning(partner_webhooks.c.id)).scalar_one()
    conn.execute(sa.update(partner_webhooks).where(partner_webhooks.c.id == webhook_id)
                 .values(sealed_secret=keyring_for(conn).seal(secret, _where(webhook_id))))
    record(conn, actor, "webhook.register", f"webhook:{webhook_id}", None,
           {"partner_id": partner_id, "url": url, "events": events})
    return {"id": webhook_id, "secret": secret, "url": url, "events": events}


def disable_webhook(conn: sa.Connection, partner_id: int, webhook_id: int, actor: str,
                    now: datetime) -> None:
    """Stop telling an endpoint anything (deliveries waiting are dropped at their turn)."""
    changed = conn.execute(sa.update(partner_webhooks).where(
        partner_webhooks.c.id == webhook_id, partner_webhooks.c.partner_id == partner_id)
        .values(state="disabled")).rowcount
    if not changed:
        raise WebhookError("unknown_webhook", partner_id=partner_id, webhook_id=webhook_id)
    record(conn, actor, "webhook.disable", f"webhook:{webhook_id}", {"state": "active"},
           {"state": "disabled"})


def webhooks_of(conn: sa.Connection, partner_id: int) -> list[dict]:
    t = partner_webhooks
    rows = conn.execute(sa.select(t.c.id, t.c.url, t.c.events, t.c.state, t.c.created_by,
                                  t.c.created_at).where(t.c.partner_id == partner_id)
                        .order_by(t.c.id)).all()
    return [dict(r._mapping) for r in rows]


def notify(conn: sa.Connection, partner_id: int, event: str, payload: dict[str, Any],
           now: datetime) -> list[int]:
    """One delivery per active endpoint of the partner that asked for ``event``, in the
    caller's transaction: the jobs' ids."""
    if event not in WEBHOOK_EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    rows = conn.execute(sa.select(partner_webhooks.c.id, partner_webhooks.c.events).where(
        partner_webhooks.c.partner_id == partner_id,
        partner_webhooks.c.state == "active")).all()
    out = []
    for r in rows:
        if event in (r.events or []):
            delivery = secrets.token_hex(16)
            body = {"id": delivery, "event": event, "created_at": to_iso(now), "data": payload}
            out.append(jobs.enqueue(conn, DELIVERY_JOB, {
                "webhook_id": r.id, "event": event, "delivery": delivery,
                "body": json.dumps(body, sort_keys=True, ensure_ascii=False,
                                   separators=(",", ":"))}, now=now))
    return out


def signature(secret: str, timestamp: str, body: str) -> str:
    """The hex HMAC-SHA256 of ``timestamp + "." + body`` under the endpoint's secret."""
    return hmac.new(secret.encode(), f"{timestamp}.{body}".encode(),
                    hashlib.sha256).hexdigest()


class DeliveryFailed(RuntimeError):
    """The endpoint did not take a delivery: the job tries again after its backoff."""


def deliver(engine: sa.Engine, payload: dict[str, Any], now: datetime, *,
            timeout: float = 10.0, http: requests.Session | None = None) -> str:
    """Send one delivery (a job handler, ``apart``): read the endpoint and open its secret in
    a short transaction, then POST with none open. ``delivered``, ``dropped`` (the endpoint
    was disabled since), or :class:`DeliveryFailed`."""
    with engine.connect() as conn:
        hook = conn.execute(sa.select(partner_webhooks).where(
            partner_webhooks.c.id == payload["webhook_id"])).first()
        if hook is None or hook.state != "active":
            return "dropped"
        secret = keyring_for(conn).open(hook.sealed_secret, _where(hook.id))
    body, timestamp = payload["body"], str(int(now.timestamp()))
    headers = {"Content-Type": "application/json", "User-Agent": "Wicket-Webhook/1",
               "X-Wicket-Event": payload["event"], "X-Wicket-Delivery": payload["delivery"],
               "X-Wicket-Timestamp": timestamp,
               "X-Wicket-Signature": signature(secret, timestamp, body)}
    try:
        r = (http or requests).post(hook.url, data=body.encode(), headers=headers,
                                    timeout=timeout, allow_redirects=False)
    except requests.RequestException as e:
        raise DeliveryFailed(f"webhook {hook.id}: {type(e).__name__}") from None
    if not 200 <= r.status_code < 300:
        raise DeliveryFailed(f"webhook {hook.id}: HTTP {r.status_code}")
    log.info("webhook %s: %s %s delivered", hook.id, payload["event"], payload["delivery"])
    return "delivered"


def delivery_handler(timeout: float = 10.0):
    """The worker's handler of :data:`DELIVERY_JOB` (registered ``apart``)."""
    http = requests.Session()

    def handle(engine: sa.Engine, payload: dict[str, Any], now: datetime) -> None:
        deliver(engine, payload, now, timeout=timeout, http=http)

    return handle


def notify_used_tickets(conn: sa.Connection, now: datetime) -> int:
    """Tell partners of their tickets admitted at a gate: the entries received after the
    stored cursor (and at least :data:`SETTLE` ago, at most :data:`WINDOW` of them), each
    admission of a ticket of a partner's order one ``ticket.used``. How many were told."""
    upto = now - SETTLE
    last = stored_cursor(conn, CURSOR)
    if last is None:  # the first turn starts from now: history is not replayed
        store_cursor(conn, CURSOR, int(upto.timestamp() * 1000))
        return 0
    after = datetime.fromtimestamp(last / 1000, upto.tzinfo)
    upto = min(upto, after + WINDOW)
    if upto <= after:
        return 0
    e, t, o, c = entries, tickets, orders, channels
    rows = conn.execute(
        sa.select(e.c.id, e.c.at, e.c.venue_id, e.c.lane, t.c.number.label("ticket"),
                  o.c.number.label("order"), c.c.partner_id)
        .join(t, t.c.id == e.c.ticket_id).join(o, o.c.id == t.c.order_id)
        .join(c, c.c.id == o.c.channel_id)
        .where(c.c.partner_id.is_not(None), e.c.admitted, e.c.direction == "in",
               e.c.received_at > after, e.c.received_at <= upto)
        .order_by(e.c.received_at, e.c.id)).all()
    for r in rows:
        notify(conn, r.partner_id, "ticket.used", {
            "order": r.order, "ticket": r.ticket, "at": to_iso(r.at), "venue_id": r.venue_id,
            "lane": r.lane, "entry": r.id}, now)
    store_cursor(conn, CURSOR, int(upto.timestamp() * 1000))
    return len(rows)


def register_tasks(tasks: jobs.Tasks, timeout: float = 10.0) -> None:
    """The channels' background work: webhook deliveries, the gates' admissions read each
    30 s, and partners' top-ups paid online."""
    tasks.register(DELIVERY_JOB, delivery_handler(timeout), apart=True)
    # a partner's top-up paid online: audited, its balance's warning re-armed (accounts.py)
    tasks.register(TOPUP_PAID_JOB, topped_up_online)
    tasks.every(USED_TASK, 30, notify_used_tickets)
