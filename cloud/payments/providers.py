"""The provider interface every payment provider implements, and the plain values that cross
it. The rules (``checkout``, ``notifications``, ``refunds``) speak only this interface; the
adapters (``offline``, ``wechat``, ``alipay``) speak their provider's wire format.

A provider never touches the database: it turns a request into the provider's signed call
and a provider's notification into a verified :class:`Notice` (or a :class:`PaymentError`
saying why it was refused), so every state change happens in the rules, in the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol


@dataclass(frozen=True)
class Shown:
    """What the buyer is shown to pay: a QR code's text, or an address to send them to.
    ``settled`` is true when the payment succeeded as it was made (the offline provider)."""

    qr_text: str | None = None
    redirect_url: str | None = None
    settled: bool = False
    reference: str | None = None


@dataclass(frozen=True)
class Notice:
    """A verified notification: a payment's state (``kind`` "payment") or a refund's
    (``kind`` "refund"), in the hub's own states and whole fen."""

    notification_id: str
    kind: str
    out_trade_no: str
    state: str
    amount: int | None
    provider_reference: str | None = None
    out_refund_no: str | None = None


@dataclass(frozen=True)
class Reply:
    """What the provider expects to hear back from a notification endpoint."""

    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class TradeStatus:
    state: str
    amount: int | None
    provider_reference: str | None = None


@dataclass(frozen=True)
class RefundStatus:
    state: str
    provider_reference: str | None = None


@dataclass(frozen=True)
class BillRow:
    """One line of a provider's statement: a payment or a refund, in fen."""

    kind: str
    out_trade_no: str
    provider_reference: str
    amount: int
    out_refund_no: str | None = None


class Provider(Protocol):
    name: str

    def create(self, out_trade_no: str, amount: int, description: str,
               expires_at: datetime, notify_url: str) -> Shown:
        """Open a payment at the provider (repeating the same call returns the same one)."""

    def parse_notification(self, headers: Mapping[str, str], body: bytes,
                           now: datetime) -> Notice:
        """Verify a notification and read it; a :class:`PaymentError` if it is refused."""

    def reply(self, accepted: bool) -> Reply:
        """The answer the provider expects for a notification taken (or refused)."""

    def query(self, out_trade_no: str) -> TradeStatus:
        """Ask the provider where a payment stands."""

    def close(self, out_trade_no: str) -> None:
        """Close an unpaid trade so that it can no longer be paid; a trade closed already is
        closed. A trade the provider will not close (it was paid meanwhile, or the provider
        names another reason) raises ``provider_refused``: the caller asks where it stands
        (:meth:`query`) and applies that, so money taken meanwhile is never lost."""

    def refund(self, out_trade_no: str, out_refund_no: str, amount: int, total: int,
               reason: str, notify_url: str) -> RefundStatus:
        """Ask for a refund; repeating the same ``out_refund_no`` refunds once."""

    def refund_query(self, out_trade_no: str, out_refund_no: str) -> RefundStatus:
        """Ask the provider where a refund stands."""

    def bill(self, day: date) -> list[BillRow]:
        """The provider's statement of one day."""
