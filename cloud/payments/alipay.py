"""Alipay's open platform (RSA2), by its public signature rules (docs/payments.md):

- a request's parameters except ``sign`` (``sign_type`` and ``biz_content`` included, empty
  values dropped) are sorted by name and joined ``k=v&…`` with their raw values; the UTF-8 of
  that text is signed SHA256withRSA with the app's private key, Base64;
- an answer ``{"<method>_response": {...}, "sign": "…"}`` is signed over the exact text of the
  ``*_response`` object as it came (found by matching braces, not re-serialised): an answer
  without a valid signature is forged;
- a notification (a form POST) is verified without ``sign`` and ``sign_type``, empty values
  dropped, with Alipay's public key; its ``app_id`` and ``seller_id`` must be ours; the reply
  is the bare word ``success``.

Amounts are yuan strings with two decimals, converted exactly to and from fen.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import parse_qsl, urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cloud.payments import transport
from cloud.payments.errors import PaymentError
from cloud.payments.money import fen_to_yuan, yuan_to_fen
from cloud.payments.providers import BillRow, Notice, RefundStatus, Reply, Shown, TradeStatus
from sync.timeutil import CHINA

NAME = "alipay"
TRADE_STATES = {"WAIT_BUYER_PAY": "pending", "TRADE_SUCCESS": "succeeded",
                "TRADE_FINISHED": "succeeded", "TRADE_CLOSED": "closed"}


def sign_content(params: Mapping[str, str]) -> str:
    """The text signed for a request: every parameter but ``sign``, empty ones dropped,
    sorted by name, ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params)
                    if k != "sign" and params[k] not in (None, ""))


def notification_content(params: Mapping[str, str]) -> str:
    """The text a notification is verified over: as a request's, without ``sign_type``."""
    return sign_content({k: v for k, v in params.items() if k != "sign_type"})


def response_text(raw: str, key: str) -> str | None:
    """The exact text of the JSON object under ``key`` in ``raw``, by matching braces (strings
    and their escapes skipped), or None."""
    start = raw.find(f'"{key}"')
    if start < 0:
        return None
    start = raw.find("{", start + len(key) + 2)
    if start < 0:
        return None
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(raw)):
        c = raw[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
            continue
        if c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return raw[start:i + 1]
    return None


@dataclass(frozen=True)
class AlipaySettings:
    gateway: str
    app_id: str
    seller_id: str
    private_key: rsa.RSAPrivateKey
    alipay_public_key: rsa.RSAPublicKey
    timeout: float = 10.0


# signed answers that say "not now" rather than "no": the call is made again later
RETRY_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"})


class Alipay:
    """The Alipay adapter (precreate: the buyer scans ``qr_code``)."""

    name = NAME

    def __init__(self, settings: AlipaySettings, now=None):
        self.s = settings
        self._now = now or (lambda: datetime.now(CHINA))

    def _verify(self, message: str, signature: str) -> bool:
        try:
            self.s.alipay_public_key.verify(base64.b64decode(signature, validate=True),
                                            message.encode(), padding.PKCS1v15(),
                                            hashes.SHA256())
            return True
        except (InvalidSignature, ValueError):
            return False

    def signed_params(self, method: str, biz: dict, notify_url: str | None = None) -> dict:
        params = {"app_id": self.s.app_id, "method": method, "format": "JSON",
                  "charset": "utf-8", "sign_type": "RSA2", "version": "1.0",
                  "timestamp": self._now().astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                  "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":"))}
        if notify_url:
            params["notify_url"] = notify_url
        signature = self.s.private_key.sign(sign_content(params).encode(),
                                            padding.PKCS1v15(), hashes.SHA256())
        return {**params, "sign": base64.b64encode(signature).decode()}

    def _call(self, method: str, biz: dict, notify_url: str | None = None) -> dict:
        body = urlencode(self.signed_params(method, biz, notify_url)).encode()
        answer = transport.send(NAME, "POST", self.s.gateway, body=body, timeout=self.s.timeout,
                                headers={"Content-Type":
                                         "application/x-www-form-urlencoded;charset=utf-8"})
        raw = answer.body.decode("utf-8", "replace")
        key = method.replace(".", "_") + "_response"
        text = response_text(raw, key)
        try:
            signature = json.loads(raw).get("sign")
        except ValueError:
            signature = None
        if text is None:
            # no signed answer (an unsigned error_response, a proxy's page, an empty body):
            # nothing Alipay stands behind, so not a refusal: ask again, with the same numbers
            raise PaymentError("provider_unavailable", provider=NAME,
                               detail=f"HTTP {answer.status} without {key}")
        if not signature or not self._verify(text, signature):
            raise PaymentError("forged_response", provider=NAME)
        reply = json.loads(text)
        if reply.get("code") == "20000" or reply.get("sub_code") in RETRY_SUB_CODES:
            raise PaymentError("provider_unavailable", provider=NAME,
                               detail=f"{reply.get('code')} {reply.get('sub_code', '')}".strip())
        if reply.get("code") != "10000":
            raise PaymentError("provider_refused", provider=NAME,
                               detail=f"{reply.get('code')} {reply.get('sub_code', '')}".strip())
        return reply

    def create(self, out_trade_no: str, amount: int, description: str,
               expires_at: datetime, notify_url: str) -> Shown:
        reply = self._call("alipay.trade.precreate", {
            "out_trade_no": out_trade_no, "total_amount": fen_to_yuan(amount),
            "subject": description[:256],
            "time_expire": expires_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")},
            notify_url)
        if not isinstance(reply.get("qr_code"), str):
            raise PaymentError("provider_refused", provider=NAME, detail="no qr_code")
        return Shown(qr_text=reply["qr_code"])

    def query(self, out_trade_no: str) -> TradeStatus:
        r = self._call("alipay.trade.query", {"out_trade_no": out_trade_no})
        total = r.get("total_amount")
        return TradeStatus(TRADE_STATES.get(r.get("trade_status"), "pending"),
                           yuan_to_fen(total) if total else None, r.get("trade_no"))

    def close(self, out_trade_no: str) -> None:
        # only a trade waiting for the buyer closes (10000); any other (paid, closed already:
        # ACQ.TRADE_STATUS_ERROR; never scanned: ACQ.TRADE_NOT_EXIST) is provider_refused,
        # and the caller asks by query where it stands
        self._call("alipay.trade.close", {"out_trade_no": out_trade_no})

    def refund(self, out_trade_no: str, out_refund_no: str, amount: int, total: int,
               reason: str, notify_url: str) -> RefundStatus:
        try:
            r = self._call("alipay.trade.refund", {
                "out_trade_no": out_trade_no, "refund_amount": fen_to_yuan(amount),
                "out_request_no": out_refund_no, "refund_reason": reason[:256]}, notify_url)
        except PaymentError as e:
            if e.code == "provider_refused":   # a business refusal: this refund is over
                return RefundStatus("failed")
            raise
        # fund_change "Y": the money moved now; "N": not (yet), the end comes later
        return RefundStatus("succeeded" if r.get("fund_change") == "Y" else "processing",
                            r.get("trade_no"))

    def refund_query(self, out_trade_no: str, out_refund_no: str) -> RefundStatus:
        r = self._call("alipay.trade.fastpay.refund.query",
                       {"out_trade_no": out_trade_no, "out_request_no": out_refund_no})
        # only REFUND_SUCCESS is an answer; anything else is not known to have happened yet
        return RefundStatus("succeeded" if r.get("refund_status") == "REFUND_SUCCESS"
                            else "processing", r.get("trade_no"))

    def bill(self, day: date) -> list[BillRow]:
        r = self._call("alipay.data.dataservice.bill.downloadurl.query",
                       {"bill_type": "trade", "bill_date": day.isoformat()})
        answer = transport.send(NAME, "GET", r.get("bill_download_url", ""), headers={},
                                timeout=self.s.timeout)
        try:
            with zipfile.ZipFile(io.BytesIO(answer.body)) as z:
                name = next(n for n in z.namelist() if n.endswith(".csv"))
                return parse_bill(z.read(name).decode("gbk"))
        except (zipfile.BadZipFile, StopIteration, UnicodeDecodeError):
            raise PaymentError("forged_response", provider=NAME) from None

    def parse_notification(self, headers: Mapping[str, str], body: bytes,
                           now: datetime) -> Notice:
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                    strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise PaymentError("bad_notification", provider=NAME, detail="form") from None
        signature = fields.get("sign", "")
        if fields.get("sign_type") != "RSA2" or not signature or \
                not self._verify(notification_content(fields), signature):
            raise PaymentError("bad_signature", provider=NAME)
        if fields.get("app_id") != self.s.app_id or fields.get("seller_id") != self.s.seller_id:
            raise PaymentError("foreign_merchant", provider=NAME)
        return _notice(fields)

    def reply(self, accepted: bool) -> Reply:
        return Reply(200, b"success" if accepted else b"fail", "text/plain")


def _notice(f: dict[str, str]) -> Notice:
    try:
        if f.get("out_biz_no") and f.get("refund_fee"):   # a refund moved the trade
            yuan_to_fen(f["refund_fee"])   # the total refunded so far, not this refund's
            return Notice(f["notify_id"], "refund", f["out_trade_no"], "succeeded", None,
                          f.get("trade_no"), f["out_biz_no"])
        return Notice(f["notify_id"], "payment", f["out_trade_no"],
                      TRADE_STATES.get(f.get("trade_status", ""), "pending"),
                      yuan_to_fen(f["total_amount"]), f.get("trade_no"))
    except (KeyError, ValueError):
        raise PaymentError("bad_notification", provider=NAME, detail="fields") from None


def parse_bill(text: str) -> list[BillRow]:
    """A trade bill: ``#`` comment lines, a header, rows (refunds negative); columns by name."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n")
             if line.strip() and not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    out = []
    for r in rows:
        r = {k.strip(): (v or "").strip() for k, v in r.items() if k}
        if not r.get("支付宝交易号"):
            continue
        amount = abs(yuan_to_fen(r["订单金额（元）"].lstrip("-")))
        if r.get("业务类型") == "退款":
            out.append(BillRow("refund", r["商户订单号"], r["支付宝交易号"], amount,
                               r.get("退款批次号/请求号") or None))
        else:
            out.append(BillRow("payment", r["商户订单号"], r["支付宝交易号"], amount))
    return out
