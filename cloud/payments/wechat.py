"""WeChat Pay API v3, by its public signature rules (docs/payments.md; no SDK takes a base
URL, so the rules are followed here with ``cryptography``):

- a request is signed SHA256withRSA (PKCS#1 v1.5) with the merchant's API key over
  ``METHOD\\nPATH?QUERY\\ntimestamp\\nnonce\\nbody\\n`` and sent as
  ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,signature=…,timestamp=…,
  serial_no=…``;
- every answer with a body and every notification is signed by the platform over
  ``timestamp\\nnonce\\nbody\\n`` (headers ``Wechatpay-Timestamp``, ``-Nonce``, ``-Signature``,
  ``-Serial``): an unsigned 2xx answer is forged; a signature from another key (another
  ``Wechatpay-Serial``), a ``WECHATPAY/SIGNTEST/`` probe, or a timestamp five minutes or more
  from now is refused;
- a notification's ``resource`` is AES-256-GCM under the APIv3 key (12-byte nonce, Base64 of
  ciphertext‖tag, ``associated_data`` as the GCM associated data).

Amounts are whole fen on the wire; the daily bill is in yuan (``cloud/payments/money.py``).
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import quote, urlsplit

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cloud.payments import transport
from cloud.payments.errors import PaymentError
from cloud.payments.money import yuan_to_fen
from cloud.payments.providers import BillRow, Notice, RefundStatus, Reply, Shown, TradeStatus
from sync.timeutil import CHINA

NAME = "wechat"
SCHEME = "WECHATPAY2-SHA256-RSA2048"
PROBE = "WECHATPAY/SIGNTEST/"
MAX_SKEW = timedelta(minutes=5)
TRADE_STATES = {"SUCCESS": "succeeded", "REFUND": "succeeded", "NOTPAY": "pending",
                "USERPAYING": "pending", "CLOSED": "closed", "REVOKED": "closed",
                "PAYERROR": "failed"}
REFUND_STATES = {"SUCCESS": "succeeded", "PROCESSING": "processing", "ABNORMAL": "failed",
                 "CLOSED": "failed"}


def request_message(method: str, path: str, timestamp: str, nonce: str, body: str) -> bytes:
    """The text a merchant signs for a request (``path`` with its query string)."""
    return f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n".encode()


def signed_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The bytes the platform signs for an answer or a notification."""
    return timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


@dataclass(frozen=True)
class WeChatSettings:
    endpoint: str
    mchid: str
    appid: str
    serial_no: str
    private_key: rsa.RSAPrivateKey
    platform_key: rsa.RSAPublicKey
    platform_key_id: str
    apiv3_key: bytes
    timeout: float = 10.0


def verify_platform_signature(s: WeChatSettings, headers: Mapping[str, str], body: bytes,
                              now: datetime) -> None:
    """Refuse what the platform did not sign, with this key, within five minutes of now."""
    h = {k.lower(): v for k, v in headers.items()}
    stamp, nonce = h.get("wechatpay-timestamp"), h.get("wechatpay-nonce")
    signature, serial = h.get("wechatpay-signature"), h.get("wechatpay-serial")
    kind = h.get("wechatpay-signature-type", SCHEME)
    if not (stamp and nonce and signature and serial) or kind != SCHEME:
        raise PaymentError("bad_signature", provider=NAME)
    if signature.startswith(PROBE) or serial != s.platform_key_id:
        raise PaymentError("bad_signature", provider=NAME)
    try:
        s.platform_key.verify(base64.b64decode(signature, validate=True),
                              signed_message(stamp, nonce, body), padding.PKCS1v15(),
                              hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise PaymentError("bad_signature", provider=NAME) from None
    if not stamp.isdigit() or abs(now.timestamp() - int(stamp)) >= MAX_SKEW.total_seconds():
        raise PaymentError("stale_notification", provider=NAME)


def decrypt_resource(apiv3_key: bytes, resource: Mapping) -> dict:
    try:
        plain = AESGCM(apiv3_key).decrypt(
            resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]),
            (resource.get("associated_data") or "").encode())
        return json.loads(plain)
    except (InvalidTag, KeyError, TypeError, AttributeError, ValueError):
        raise PaymentError("bad_signature", provider=NAME) from None


class WeChatPay:
    """The WeChat Pay v3 adapter (Native payments: the buyer scans ``code_url``)."""

    name = NAME

    def __init__(self, settings: WeChatSettings, now=None):
        self.s = settings
        self._now = now or (lambda: datetime.now(CHINA))

    # -- calls ---------------------------------------------------------------------------

    def authorization(self, method: str, path: str, body: str) -> str:
        stamp, nonce = str(int(self._now().timestamp())), secrets.token_hex(16)
        signature = rsa_sign(self.s.private_key,
                             request_message(method, path, stamp, nonce, body))
        return (f'{SCHEME} mchid="{self.s.mchid}",nonce_str="{nonce}",'
                f'signature="{signature}",timestamp="{stamp}",serial_no="{self.s.serial_no}"')

    def _call(self, method: str, path: str, payload: dict | None = None,
              done: frozenset[str] = frozenset()) -> tuple[int, dict]:
        """The call's status and signed JSON answer; a refusal whose error code is in
        ``done`` (what was asked is so already) answers as a 2xx without a body would."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) if payload else ""
        headers = {"Authorization": self.authorization(method, path, body),
                   "Accept": "application/json", "Content-Type": "application/json"}
        answer = transport.send(NAME, method, self.s.endpoint.rstrip("/") + path,
                                headers=headers, body=body.encode() or None,
                                timeout=self.s.timeout)
        if 200 <= answer.status < 300 and answer.body:
            try:
                verify_platform_signature(self.s, answer.headers, answer.body, self._now())
            except PaymentError:
                raise PaymentError("forged_response", provider=NAME) from None
            return answer.status, json.loads(answer.body)
        if 200 <= answer.status < 300:
            return answer.status, {}
        try:
            error = json.loads(answer.body)
        except ValueError:
            error = {}
        if isinstance(error, dict) and error.get("code") in done:
            return answer.status, {}
        if not isinstance(error, dict):
            error = {}
        raise PaymentError("provider_refused", provider=NAME,
                           detail=f"{answer.status} {error.get('code', '')}".strip())

    def create(self, out_trade_no: str, amount: int, description: str,
               expires_at: datetime, notify_url: str) -> Shown:
        _, reply = self._call("POST", "/v3/pay/transactions/native", {
            "appid": self.s.appid, "mchid": self.s.mchid, "description": description[:127],
            "out_trade_no": out_trade_no, "notify_url": notify_url,
            "time_expire": expires_at.astimezone(CHINA).isoformat(timespec="seconds"),
            "amount": {"total": amount, "currency": "CNY"}})
        if not isinstance(reply.get("code_url"), str):
            raise PaymentError("provider_refused", provider=NAME, detail="no code_url")
        return Shown(qr_text=reply["code_url"])

    def query(self, out_trade_no: str) -> TradeStatus:
        _, t = self._call("GET", f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no)}"
                                 f"?mchid={quote(self.s.mchid)}")
        return TradeStatus(TRADE_STATES.get(t.get("trade_state"), "pending"),
                           (t.get("amount") or {}).get("total"), t.get("transaction_id"))

    def close(self, out_trade_no: str) -> None:
        # 204 without a body; 400 ORDER_CLOSED: closed already (by an earlier close). A trade
        # paid meanwhile is refused (v3 names no code for it): the caller asks by query
        self._call("POST", f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no)}/close",
                   {"mchid": self.s.mchid}, done=frozenset({"ORDER_CLOSED"}))

    def refund(self, out_trade_no: str, out_refund_no: str, amount: int, total: int,
               reason: str, notify_url: str) -> RefundStatus:
        _, r = self._call("POST", "/v3/refund/domestic/refunds", {
            "out_trade_no": out_trade_no, "out_refund_no": out_refund_no,
            "reason": reason[:80], "notify_url": notify_url,
            "amount": {"refund": amount, "total": total, "currency": "CNY"}})
        # the answer only says the refund was accepted: its end comes by notification
        state = "failed" if r.get("status") in ("ABNORMAL", "CLOSED") else "processing"
        return RefundStatus(state, r.get("refund_id"))

    def refund_query(self, out_trade_no: str, out_refund_no: str) -> RefundStatus:
        _, r = self._call("GET", f"/v3/refund/domestic/refunds/{quote(out_refund_no)}")
        return RefundStatus(REFUND_STATES.get(r.get("status"), "processing"),
                            r.get("refund_id"))

    def bill(self, day: date) -> list[BillRow]:
        _, info = self._call("GET", f"/v3/bill/tradebill?bill_date={day.isoformat()}"
                                    "&bill_type=ALL&tar_type=GZIP")
        url = urlsplit(info.get("download_url", ""))
        path = url.path + (f"?{url.query}" if url.query else "")
        answer = transport.send(NAME, "GET", info.get("download_url", ""),
                                headers={"Authorization": self.authorization("GET", path, "")},
                                timeout=self.s.timeout)
        if answer.status != 200:
            raise PaymentError("provider_refused", provider=NAME, detail=f"{answer.status}")
        try:   # the download is not signed: its SHA-1 from the signed answer vouches for it
            text = gzip.decompress(answer.body)
        except (OSError, EOFError):
            raise PaymentError("forged_response", provider=NAME) from None
        if hashlib.sha1(text).hexdigest() != str(info.get("hash_value", "")).lower():
            raise PaymentError("forged_response", provider=NAME)
        return parse_bill(text.decode("utf-8-sig"))

    # -- notifications -------------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes,
                           now: datetime) -> Notice:
        verify_platform_signature(self.s, headers, body, now)
        try:
            envelope = json.loads(body)
            event, resource = envelope["event_type"], envelope["resource"]
            notification_id = str(envelope["id"])
        except (ValueError, KeyError, TypeError):
            raise PaymentError("bad_notification", provider=NAME, detail="envelope") from None
        plain = decrypt_resource(self.s.apiv3_key, resource)
        # the merchant always, and the app for a payment (a refund's resource names no app)
        if plain.get("mchid") != self.s.mchid or (
                event.startswith("TRANSACTION.") and plain.get("appid") != self.s.appid):
            raise PaymentError("foreign_merchant", provider=NAME)
        try:
            if event.startswith("REFUND."):
                return Notice(notification_id, "refund", plain["out_trade_no"],
                              REFUND_STATES.get(plain.get("refund_status"), "failed"),
                              int(plain["amount"]["refund"]), plain.get("refund_id"),
                              plain["out_refund_no"])
            if event.startswith("TRANSACTION."):
                return Notice(notification_id, "payment", plain["out_trade_no"],
                              TRADE_STATES.get(plain.get("trade_state"), "pending"),
                              int(plain["amount"]["total"]), plain.get("transaction_id"))
        except (KeyError, TypeError, ValueError):
            raise PaymentError("bad_notification", provider=NAME, detail="resource") from None
        raise PaymentError("bad_notification", provider=NAME, detail=f"event {event}")

    def reply(self, accepted: bool) -> Reply:
        if accepted:
            return Reply(204, b"", "application/json")
        return Reply(400, json.dumps({"code": "FAIL", "message": "失败"},
                                     ensure_ascii=False).encode(), "application/json")


def parse_bill(text: str) -> list[BillRow]:
    """A trade bill: a header, detail rows (each field prefixed with a backtick, amounts in
    yuan), then a summary header and its row; columns are found by their names."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        return []
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    header = [c.strip().lstrip("`") for c in rows[0]]
    out = []
    for row in rows[1:]:
        cells = [c.strip().lstrip("`") for c in row]
        if cells and cells[0].startswith("总交易单数"):
            break       # the summary follows the details
        r = dict(zip(header, cells, strict=False))
        if r.get("交易状态") == "REFUND":
            out.append(BillRow("refund", r["商户订单号"], r["微信订单号"],
                               yuan_to_fen(r["申请退款金额"]), r.get("商户退款单号") or None))
        else:
            out.append(BillRow("payment", r["商户订单号"], r["微信订单号"],
                               yuan_to_fen(r["订单金额"])))
    return out
