"""The offline provider: cash or a card terminal at a booth, recorded by the clerk. The money
is in hand when the payment is made, so it succeeds at once; a refund is money handed back at
the booth and succeeds at once too. It sends no notifications and keeps no statement."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from cloud.payments.errors import PaymentError
from cloud.payments.providers import BillRow, Notice, RefundStatus, Reply, Shown, TradeStatus


class OfflineProvider:
    name = "offline"
    calls_out = False  # nothing to wait for: paid in the request's one transaction

    def create(self, out_trade_no: str, amount: int, description: str,
               expires_at: datetime, notify_url: str) -> Shown:
        return Shown(settled=True, reference=f"booth-{out_trade_no}")

    def parse_notification(self, headers: Mapping[str, str], body: bytes,
                           now: datetime) -> Notice:
        raise PaymentError("bad_notification", provider=self.name,
                           detail="the offline provider sends no notifications")

    def reply(self, accepted: bool) -> Reply:
        return Reply(204 if accepted else 400, b"", "text/plain")

    def query(self, out_trade_no: str) -> TradeStatus:
        return TradeStatus("succeeded", None, f"booth-{out_trade_no}")

    def close(self, out_trade_no: str) -> None:
        """Nothing to close: an offline payment is never left open to be paid later."""

    def refund(self, out_trade_no: str, out_refund_no: str, amount: int, total: int,
               reason: str, notify_url: str) -> RefundStatus:
        return RefundStatus("succeeded", f"booth-{out_refund_no}")

    def refund_query(self, out_trade_no: str, out_refund_no: str) -> RefundStatus:
        return RefundStatus("succeeded", f"booth-{out_refund_no}")

    def bill(self, day: date) -> list[BillRow]:
        return []
