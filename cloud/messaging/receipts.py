"""Delivery receipts: the gateway tells the hub, some time after it took a message, whether
the phone got it. A receipt is believed only when signed with the receipt key the hub and the
gateway share (HMAC-SHA256 over the timestamp and the body, ``X-Wicket-Signature: t=<unix
seconds>,v1=<hex>``) and when its timestamp is within five minutes of the hub's clock: a
forged or replayed receipt changes nothing. A believed receipt moves a sent message to
delivered or failed (``cloud/core/outbox.py`` ``apply_receipt``)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from cloud.core.outbox import apply_receipt
from cloud.messaging.errors import MessagingError
from sync.timeutil import utcnow

HEADER = "X-Wicket-Signature"
SKEW_S = 300
MAX_RECEIPTS = 1000


def sign(key: str, body: bytes, t: int) -> str:
    """The signature header's value for ``body`` sent at ``t`` (unix seconds)."""
    mac = hmac.new(key.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(key: str, body: bytes, header: str | None, now: datetime) -> None:
    """Refuse (``bad_receipt_signature``) a body whose signature does not hold or is stale."""
    if not key or not header:
        raise MessagingError("bad_receipt_signature")
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        t = int(fields["t"])
        given = fields["v1"]
    except (ValueError, KeyError):
        raise MessagingError("bad_receipt_signature") from None
    if abs(now.timestamp() - t) > SKEW_S or not hmac.compare_digest(
            sign(key, body, t).split("v1=", 1)[1], given):
        raise MessagingError("bad_receipt_signature")


def _receipts(body: bytes) -> list[dict[str, Any]]:
    try:
        found = json.loads(body)["receipts"]
    except (ValueError, KeyError, TypeError):
        raise MessagingError("bad_receipt", detail="a JSON object with receipts") from None
    if not isinstance(found, list) or len(found) > MAX_RECEIPTS:
        raise MessagingError("bad_receipt", detail=f"1 to {MAX_RECEIPTS} receipts")
    for r in found:
        if not (isinstance(r, dict) and isinstance(r.get("delivery_id"), str)
                and r.get("status") in ("delivered", "failed")):
            raise MessagingError("bad_receipt", detail="each names a delivery_id and a status "
                                 "delivered or failed")
    return found


def take_receipts(conn: sa.Connection, key: str, body: bytes, header: str | None,
                  now: datetime | None = None) -> int:
    """Verify a batch of receipts and apply them; how many messages changed (a receipt for a
    message already finished, or unknown, changes nothing)."""
    now = now or utcnow()
    verify(key, body, header, now)
    return sum(apply_receipt(conn, r["delivery_id"], r["status"] == "delivered",
                             str(r.get("reason") or "") or None, now)
               for r in _receipts(body))
