"""The payment sandbox: one process that plays WeChat Pay v3 and Alipay for the hub, with
their wire formats, so that tests and the demo pay the way production does.

It makes its own keys at start (the platform's and Alipay's; the private halves never leave
its memory) and publishes their public halves, its address and ids in a folder the hub's
settings point at; it reads only the merchant's public keys and the APIv3 key (the
``public/`` folder of ``cloud/payments/keys.py``). It checks every request's signature
(WeChat: 401 ``SIGN_ERROR``; Alipay: ``40002``), keeps trades and refunds in memory, shows a
page where the buyer pays or fails, and sends signed notifications until the hub
acknowledges them (``sandbox_delivery.py``). Faults are injected per trade through the
control API (:data:`FAULTS`). HTTP is ``sandbox_pages.py``; signatures ``sandbox_signing.py``.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cloud.payments import sandbox_signing as sig
from cloud.payments.sandbox_delivery import Dispatcher

CHINA = timezone(timedelta(hours=8))
FAULTS = {
    "duplicate": "each notification of the trade is delivered twice more after it is taken",
    "out_of_order": "after the success, an older state (closed / waiting) arrives too",
    "bad_signature": "the first attempt of each notification carries a broken signature",
    "stale_timestamp": "the first attempt is signed validly five minutes and more ago (WeChat)",
    "signtest": "the first attempt carries a WECHATPAY/SIGNTEST/ probe signature (WeChat)",
    "wrong_key": "the first attempt is signed with a key the hub does not know",
    "amount_mismatch": "notifications say one fen more than the trade",
    "foreign_merchant": "notifications name another merchant",
    "refund_fail": "refunds of the trade fail (WeChat: ABNORMAL later; Alipay: refused)",
    "timeout_after_commit": "the next call commits, then answers only when released",
    "server_error": "the next call answers 500 SYSTEM_ERROR without doing anything",
    "no_callback": "the trade succeeds but none of its notifications is ever sent",
    "bill_wrong_amount": "the next statement says one fen more for its first payment",
    "bill_missing": "the next statement leaves out its first payment",
    "bill_extra": "the next statement lists a payment the hub never made",
    "bill_duplicate": "the next statement lists its latest payment twice",
    "bill_unknown_refund": "the next statement lists a refund of its latest payment that the "
                           "hub never asked for",
    "bill_wrong_hash": "the next WeChat statement's SHA-1 does not match its file",
    "bill_truncated": "the next WeChat statement's gzip file is cut short",
}
ONCE = {"timeout_after_commit", "server_error"}


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False


@dataclass
class Trade:
    provider: str
    out_trade_no: str
    amount: int
    description: str
    notify_url: str
    merchant: dict[str, str]
    state: str = "NOTPAY"
    reference: str = field(default_factory=lambda: "42000" + secrets.token_hex(12))
    faults: set[str] = field(default_factory=set)
    paid_at: datetime | None = None


@dataclass
class Refund:
    provider: str
    out_trade_no: str
    out_refund_no: str
    amount: int
    notify_url: str
    state: str = "PROCESSING"
    refund_id: str = field(default_factory=lambda: "50300" + secrets.token_hex(12))


def _pem_public(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


class Sandbox:
    def __init__(self, hub_keys: str | Path, publish: str | Path, base_url: str,
                 time_scale: float = 0.001, seller_id: str = "2088000000000001",
                 hold_timeout: float = 60.0):
        hub = Path(hub_keys)
        self.merchant = json.loads((hub / "merchant.json").read_text())
        self.hub_wechat = serialization.load_pem_public_key(
            (hub / "wechat_merchant_public.pem").read_bytes())
        self.hub_alipay = serialization.load_pem_public_key(
            (hub / "alipay_app_public.pem").read_bytes())
        self.apiv3_key = (hub / "wechat_apiv3.key").read_bytes().strip()
        self.platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.alipay = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.platform_key_id = "PUB_KEY_ID_" + secrets.token_hex(12).upper()
        self.base_url, self.seller_id = base_url.rstrip("/"), seller_id
        self.hold_timeout = hold_timeout
        self.trades: dict[str, Trade] = {}
        self.refunds: dict[str, Refund] = {}
        self.next_faults: set[str] = set()
        self.requests: list[dict] = []
        self.bills: dict[str, bytes] = {}
        self.bill_faults: set[str] = set()
        self.last_bill_faults: set[str] = set()
        self.released = threading.Event()
        self.lock = threading.RLock()
        self.dispatcher = Dispatcher(time_scale)
        self._publish(Path(publish))

    def _publish(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "wechat_platform_public.pem").write_bytes(_pem_public(self.platform))
        (folder / "alipay_public.pem").write_bytes(_pem_public(self.alipay))
        (folder / "sandbox.json").write_text(json.dumps({
            "url": self.base_url, "wechat_platform_key_id": self.platform_key_id,
            "alipay_seller_id": self.seller_id}))

    # -- faults and the control API ------------------------------------------------------

    def inject(self, faults: list[str], out_trade_no: str | None = None) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}")
        with self.lock:
            self.bill_faults |= {f for f in faults if f.startswith("bill_")}
            faults = [f for f in faults if not f.startswith("bill_")]
            if out_trade_no is None:
                self.next_faults |= set(faults)
            else:
                self.trades[out_trade_no].faults |= set(faults)

    def forget(self) -> None:
        """Forget every trade and refund: the next statement lists only what comes after
        (a test's own trades, whatever the tests before it paid)."""
        with self.lock:
            self.trades.clear()
            self.refunds.clear()
            self.bill_faults.clear()

    def _take_fault(self, trade: Trade | None, name: str) -> bool:
        with self.lock:
            faults = trade.faults if trade is not None else self.next_faults
            if name in faults:
                if name in ONCE:
                    faults.discard(name)
                return True
            if trade is None:
                return False
            if name in self.next_faults and name in ONCE:
                self.next_faults.discard(name)
                return True
        return False

    def log_request(self, **entry) -> None:
        with self.lock:
            self.requests.append(entry)

    def pay(self, out_trade_no: str, result: str) -> Trade:
        """The buyer's choice on the pay page: ``pay`` or ``fail``. A trade no longer waiting
        (paid, failed, or closed by the merchant) is left as it is: nothing more is paid."""
        with self.lock:
            trade = self.trades[out_trade_no]
            if trade.state != "NOTPAY":
                return trade
            trade.state = "SUCCESS" if result == "pay" else "PAYERROR"
            trade.paid_at = datetime.now(UTC) if result == "pay" else None
        if trade.provider == "wechat" and trade.state == "SUCCESS":
            self._notify_wechat_trade(trade, "SUCCESS")
            if "out_of_order" in trade.faults:
                self._notify_wechat_trade(trade, "CLOSED")
        elif trade.provider == "alipay":
            status = "TRADE_SUCCESS" if trade.state == "SUCCESS" else "TRADE_CLOSED"
            self._notify_alipay(trade, {"trade_status": status})
            if "out_of_order" in trade.faults and trade.state == "SUCCESS":
                self._notify_alipay(trade, {"trade_status": "WAIT_BUYER_PAY"})
        return trade

    # -- WeChat notifications ------------------------------------------------------------

    def _wechat_delivery(self, trade: Trade, kind: str, event: str, plain: dict,
                         after: float = 0.0) -> None:
        notification_id = secrets.token_hex(16)
        envelope = json.dumps({
            "id": notification_id, "create_time": datetime.now(CHINA).isoformat("T", "seconds"),
            "event_type": event, "resource_type": "encrypt-resource", "summary": event,
            "resource": sig.wechat_seal(self.apiv3_key, plain, kind)}).encode()
        first = next((f for f in ("bad_signature", "stale_timestamp", "signtest", "wrong_key")
                      if f in trade.faults), None)

        def sign(attempt: int) -> tuple[dict[str, str], bytes]:
            now = int(datetime.now(UTC).timestamp())
            fault = first if attempt == 1 else None
            key = self.stranger if fault == "wrong_key" else self.platform
            when = now - 400 if fault == "stale_timestamp" else now
            headers = sig.wechat_headers(key, self.platform_key_id, envelope, when)
            if fault == "bad_signature":
                headers["Wechatpay-Signature"] = sig.sign_bytes(self.platform, b"other")
            elif fault == "signtest":
                headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + \
                    headers["Wechatpay-Signature"]
            return {**headers, "Content-Type": "application/json"}, envelope

        self._deliver(trade, kind, notification_id, sign, after)

    def _deliver(self, trade: Trade, kind: str, notification_id: str, sign,
                 after: float = 0.0) -> None:
        if "no_callback" in trade.faults:
            return      # the hub learns of the trade only by asking (or from the statement)
        copies = 3 if "duplicate" in trade.faults else 1
        for i in range(copies):
            self.dispatcher.add(trade.provider, kind, trade.out_trade_no, notification_id,
                                trade.notify_url, sign, after + i)

    def _merchant_ids(self, trade: Trade) -> tuple[str, str]:
        mchid = trade.merchant.get("mchid", "")
        return ("1999999999", mchid) if "foreign_merchant" in trade.faults else (mchid, mchid)

    def _notify_wechat_trade(self, trade: Trade, state: str) -> None:
        mchid, _ = self._merchant_ids(trade)
        total = trade.amount + (1 if "amount_mismatch" in trade.faults else 0)
        plain = {"mchid": mchid, "appid": trade.merchant.get("appid", ""),
                 "out_trade_no": trade.out_trade_no, "transaction_id": trade.reference,
                 "trade_type": "NATIVE", "trade_state": state,
                 "success_time": (trade.paid_at or datetime.now(UTC)).astimezone(CHINA)
                 .isoformat("T", "seconds"), "attach": "",
                 "payer": {"openid": "sandbox-openid"},
                 "amount": {"total": total, "payer_total": total, "currency": "CNY"}}
        self._wechat_delivery(trade, "transaction", "TRANSACTION." + state, plain)

    def notify_wechat_refund(self, trade: Trade, refund: Refund, after: float) -> None:
        mchid, _ = self._merchant_ids(trade)
        plain = {"mchid": mchid, "out_trade_no": trade.out_trade_no,
                 "transaction_id": trade.reference, "out_refund_no": refund.out_refund_no,
                 "refund_id": refund.refund_id, "refund_status": refund.state,
                 "success_time": datetime.now(CHINA).isoformat("T", "seconds"),
                 "user_received_account": "sandbox",
                 "amount": {"total": trade.amount, "refund": refund.amount,
                            "payer_total": trade.amount, "payer_refund": refund.amount}}
        self._wechat_delivery(trade, "refund", "REFUND." + refund.state, plain, after)

    # -- Alipay notifications -------------------------------------------------------------

    def _notify_alipay(self, trade: Trade, extra: dict[str, str], kind: str = "transaction",
                       after: float = 0.0) -> None:
        amount = trade.amount + (1 if "amount_mismatch" in trade.faults else 0)
        app_id = "2021999999999999" if "foreign_merchant" in trade.faults else \
            trade.merchant.get("app_id", "")
        fields = {"notify_id": secrets.token_hex(16), "notify_type": "trade_status_sync",
                  "notify_time": datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                  "charset": "utf-8", "version": "1.0", "app_id": app_id,
                  "seller_id": self.seller_id, "trade_no": trade.reference,
                  "out_trade_no": trade.out_trade_no, "total_amount": sig.yuan(amount),
                  "receipt_amount": sig.yuan(amount), "subject": trade.description,
                  "gmt_payment": (trade.paid_at or datetime.now(UTC)).astimezone(CHINA)
                  .strftime("%Y-%m-%d %H:%M:%S"), **extra}
        signed = sig.alipay_notification(self.alipay, fields)
        first = next((f for f in ("bad_signature", "wrong_key") if f in trade.faults), None)

        def sign(attempt: int) -> tuple[dict[str, str], bytes]:
            sent = dict(signed)
            if attempt == 1 and first == "bad_signature":
                sent["total_amount"] = sig.yuan(amount + 100)     # changed after signing
            elif attempt == 1 and first == "wrong_key":
                sent = sig.alipay_notification(self.stranger, fields)
            return ({"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                    urlencode(sent).encode())

        self._deliver(trade, kind, fields["notify_id"], sign, after)

    def notify_alipay_refund(self, trade: Trade, refund: Refund, refunded: int,
                             after: float) -> None:
        """Alipay's ``refund_fee`` is what the trade's refunds have taken so far."""
        status = "TRADE_CLOSED" if refunded >= trade.amount else "TRADE_SUCCESS"
        self._notify_alipay(trade, {"trade_status": status, "out_biz_no": refund.out_refund_no,
                                    "refund_fee": sig.yuan(refunded),
                                    "gmt_refund": datetime.now(CHINA)
                                    .strftime("%Y-%m-%d %H:%M:%S.000")}, "refund", after)
