"""The gateway's delivery receipts: ``POST /api/v1/messaging/receipts``.

No staff sign-in and no CSRF token: a receipt is believed through its signature alone, under
the receipt key the hub shares with the gateway (``SMS_RECEIPT_KEY``;
``cloud/messaging/receipts.py``). A refused batch changes nothing and is answered with its
code; the gateway sends it again.
"""

from __future__ import annotations

import os

from flask import Flask, current_app, jsonify, request

from cloud.messaging.receipts import HEADER, take_receipts
from cloud.messaging.settings import messaging_settings
from cloud.web.http import engine, json_blueprint

bp = json_blueprint("messaging_receipts", "/api/v1/messaging")
MAX_BODY = 512 * 1024


def init_messaging(app: Flask) -> None:
    """Read the messaging settings once, at start."""
    app.extensions["messaging_settings"] = messaging_settings(app.config, os.environ)


@bp.post("/receipts")
def receipts():
    if (request.content_length or 0) > MAX_BODY:
        return jsonify(error="too_large", params={"limit": MAX_BODY}), 413
    body = request.get_data(cache=False)
    with engine().begin() as conn:
        changed = take_receipts(conn, current_app.extensions["messaging_settings"][
            "SMS_RECEIPT_KEY"], body, request.headers.get(HEADER))
    return jsonify(ok=True, changed=changed)


receipts.wicket_signed_by = "gateway"  # its credential: the receipt key's signature
