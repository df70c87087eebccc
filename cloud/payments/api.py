"""The providers' notification endpoints: ``POST /api/v1/payments/notify/<provider>``.

No staff sign-in and no CSRF token: a notification is authenticated by its signature alone
(``cloud/payments/notifications.py``), and answered exactly as its provider expects (WeChat:
204, or 4xx with ``{"code": "FAIL", …}``; Alipay: the word ``success``, or ``fail``). These
endpoints carry no per-address rate limit: a provider sends every merchant's notifications
from a few addresses and retries what is refused, so a limit would only delay payments; a
forged request costs one signature check and changes nothing.
"""

from __future__ import annotations

import logging
import os

from flask import Blueprint, Flask, Response, current_app, request

from cloud.payments.capturing import place
from cloud.payments.errors import PaymentError
from cloud.payments.notifications import handle_notification
from cloud.payments.settings import make_providers, payment_settings, provider
from cloud.payments.settings import notify_url as settings_notify_url
from cloud.web.http import engine

log = logging.getLogger(__name__)
bp = Blueprint("payments_notify", __name__, url_prefix="/api/v1/payments")


def init_payments(app: Flask) -> None:
    """Read the payments settings and build the providers once, at start."""
    settings = payment_settings(app.config, os.environ)
    app.extensions["payment_settings"] = settings
    app.extensions["payment_providers"] = make_providers(settings)


def notify_url(provider_name: str) -> str:
    """Where ``provider_name`` sends this hub's notifications (the page's own address when the
    hub is given no public one)."""
    return settings_notify_url(current_app.extensions["payment_settings"], provider_name,
                               current_app.config.get("HUB_PUBLIC_URL") or request.host_url)


@bp.post("/notify/<name>")
def notify(name: str):
    """A provider's notification: no staff credential, believed only through the provider's
    signature, which the adapter verifies before anything changes."""
    try:
        adapter = provider(current_app.extensions["payment_providers"], name)
    except PaymentError:
        return Response(b"", status=404)
    body = request.get_data(cache=False)
    try:
        with engine().begin() as conn:
            outcome = handle_notification(conn, adapter, request.headers, body)
            if outcome.newly_succeeded:  # the order is paid in the payment's transaction
                placed = place(conn, outcome)
                log.info("payment %s of order %s succeeded (%s fen): order %s", outcome.payment_id,
                         outcome.order_id, outcome.amount, placed.state)
    except PaymentError:
        reply = adapter.reply(False)
    else:
        reply = adapter.reply(True)
    return Response(reply.body, status=reply.status, content_type=reply.content_type)



notify.wicket_signed_by = "provider"  # its credential: the provider's signature