"""The sandbox's provider APIs as the hub calls them: WeChat Pay v3's Native prepay, query,
close, refund, refund query and trade bill, and Alipay's gateway methods (precreate, query,
close, refund, refund query, bill address). Each takes the request as it came and gives an
:class:`Answer` in the provider's format: WeChat answers signed with the platform key (a
bill's download is not), Alipay's signed over the ``*_response`` text; a request the merchant
did not sign is refused (401 ``SIGN_ERROR``; ``40002``). The statements are
``sandbox_bills.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from cloud.payments import sandbox_bills
from cloud.payments import sandbox_signing as sig
from cloud.payments.sandbox import Answer, Refund, Sandbox, Trade

REFUND_DELAY = 60.0     # seconds (scaled) from a refund's request to its end
TRADE_PATH = "/v3/pay/transactions/out-trade-no/"


def _wx(sb: Sandbox, status: int, content: dict) -> Answer:
    body = json.dumps(content, ensure_ascii=False).encode()
    headers = sig.wechat_headers(sb.platform, sb.platform_key_id, body,
                                 int(datetime.now(UTC).timestamp()))
    return Answer(status, body, {**headers, "Content-Type": "application/json"})


def _wx_error(status: int, code: str, message: str) -> Answer:
    return Answer(status, json.dumps({"code": code, "message": message}).encode(),
                  {"Content-Type": "application/json"})


def wechat_signed_by_hub(sb: Sandbox, method: str, target: str, headers: Mapping[str, str],
                         body: bytes) -> bool:
    fields = sig.wechat_authorization(headers.get("Authorization", ""))
    return bool(fields) and fields.get("mchid") == sb.merchant["wechat_mchid"] and \
        fields.get("serial_no") == sb.merchant["wechat_serial_no"] and \
        sig.wechat_request_ok(sb.hub_wechat, method, target, body, fields)


def wechat(sb: Sandbox, method: str, path: str, target: str, headers: Mapping[str, str],
           body: bytes, query: Mapping[str, str]) -> Answer:
    signed = wechat_signed_by_hub(sb, method, target, headers, body)
    payload = json.loads(body) if body else {}
    no = payload.get("out_trade_no")
    if path.startswith(TRADE_PATH):    # a query or a close names the trade in its path
        no = path[len(TRADE_PATH):].removesuffix("/close")
    sb.log_request(provider="wechat", api=f"{method} {path}", signed=signed,
                   out_trade_no=no, out_refund_no=payload.get("out_refund_no"),
                   amount=payload.get("amount"))
    if not signed:
        return _wx_error(401, "SIGN_ERROR", "签名错误")
    if sb._take_fault(sb.trades.get(no or ""), "server_error"):
        return _wx_error(500, "SYSTEM_ERROR", "系统错误")
    if method == "POST" and path == "/v3/pay/transactions/native":
        return _wechat_native(sb, payload)
    if method == "POST" and path.startswith(TRADE_PATH) and path.endswith("/close"):
        return _wechat_close(sb, no, payload)
    if method == "GET" and path.startswith(TRADE_PATH):
        trade = sb.trades.get(no)
        if trade is None or trade.provider != "wechat":
            return _wx_error(404, "ORDER_NOT_EXIST", "订单不存在")
        return _wx(sb, 200, {"mchid": trade.merchant["mchid"], "appid": trade.merchant["appid"],
                             "out_trade_no": trade.out_trade_no, "trade_state": trade.state,
                             "transaction_id": trade.reference,
                             "amount": {"total": trade.amount, "currency": "CNY"}})
    if method == "POST" and path == "/v3/refund/domestic/refunds":
        return _wechat_refund(sb, payload)
    if method == "GET" and path.startswith("/v3/refund/domestic/refunds/"):
        refund = sb.refunds.get(path.rsplit("/", 1)[1])
        if refund is None:
            return _wx_error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return _wx(sb, 200, _refund_json(refund))
    if method == "GET" and path == "/v3/bill/tradebill":
        text = sandbox_bills.wechat_bill(sb)
        token, digest = secrets.token_hex(8), hashlib.sha1(text).hexdigest()
        sb.bills[token] = gzip.compress(text)
        if "bill_wrong_hash" in sb.last_bill_faults:
            digest = hashlib.sha1(text + b"x").hexdigest()
        if "bill_truncated" in sb.last_bill_faults:
            sb.bills[token] = sb.bills[token][:len(sb.bills[token]) // 2]
        return _wx(sb, 200, {"hash_type": "SHA1", "hash_value": digest,
                             "download_url": f"{sb.base_url}/v3/billdownload/file?token={token}"})
    if method == "GET" and path == "/v3/billdownload/file" and query.get("token") in sb.bills:
        return Answer(200, sb.bills[query["token"]], {"Content-Type": "application/gzip"})
    return _wx_error(404, "NOT_FOUND", "no such API")


def _wechat_native(sb: Sandbox, p: dict) -> Answer:
    total = (p.get("amount") or {}).get("total")
    no = p.get("out_trade_no")
    if not isinstance(total, int) or isinstance(total, bool) or total <= 0 or not no \
            or p.get("mchid") != sb.merchant["wechat_mchid"]:
        return _wx_error(400, "PARAM_ERROR", "参数错误")
    with sb.lock:
        trade = sb.trades.get(no)
        if trade is not None and trade.amount != total:
            return _wx_error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
        if trade is None:
            trade = sb.trades[no] = Trade("wechat", no, total, p.get("description", ""),
                                          p.get("notify_url", ""),
                                          {"mchid": p["mchid"], "appid": p.get("appid", "")},
                                          faults=set(sb.next_faults))
            sb.next_faults.clear()
    answer = _wx(sb, 200, {"code_url": f"{sb.base_url}/pay/{no}"})
    answer.hold = sb._take_fault(trade, "timeout_after_commit")
    return answer


def _wechat_close(sb: Sandbox, no: str, p: dict) -> Answer:
    """Close an unpaid trade: 204, and it can no longer be paid; closed already: 400
    ``ORDER_CLOSED``; paid: refused (403 ``TRADE_ERROR``: v3 names no code of its own)."""
    if p.get("mchid") != sb.merchant["wechat_mchid"]:
        return _wx_error(400, "PARAM_ERROR", "参数错误")
    with sb.lock:
        trade = sb.trades.get(no)
        if trade is None or trade.provider != "wechat":
            return _wx_error(404, "ORDER_NOT_EXIST", "订单不存在")
        if trade.state == "SUCCESS":
            return _wx_error(403, "TRADE_ERROR", "订单已支付")
        if trade.state == "CLOSED":
            return _wx_error(400, "ORDER_CLOSED", "订单已关闭")
        trade.state = "CLOSED"      # waiting, or failed (a failed trade is closed to end it)
    headers = sig.wechat_headers(sb.platform, sb.platform_key_id, b"",
                                 int(datetime.now(UTC).timestamp()))
    return Answer(204, b"", headers)


def _refund_json(r: Refund) -> dict:
    return {"refund_id": r.refund_id, "out_refund_no": r.out_refund_no,
            "out_trade_no": r.out_trade_no, "status": r.state,
            "amount": {"refund": r.amount, "currency": "CNY"}}


def _refunded(sb: Sandbox, out_trade_no: str) -> int:
    return sum(r.amount for r in sb.refunds.values()
               if r.out_trade_no == out_trade_no and r.state != "ABNORMAL")


def _new_refund(sb: Sandbox, trade: Trade, no: str, amount: int, notify_url: str) -> Refund | str:
    """A new refund of ``trade`` (ending later), or why it cannot be."""
    if trade.state != "SUCCESS":
        return "not paid"
    if _refunded(sb, trade.out_trade_no) + amount > trade.amount:
        return "not enough"
    refund = sb.refunds[no] = Refund(trade.provider, trade.out_trade_no, no, amount, notify_url)
    final = "ABNORMAL" if "refund_fail" in trade.faults else "SUCCESS"

    def finish() -> None:
        with sb.lock:
            refund.state = final
            refunded = _refunded(sb, trade.out_trade_no)
        if trade.provider == "wechat":
            sb.notify_wechat_refund(trade, refund, 0.0)
        elif final == "SUCCESS":
            sb.notify_alipay_refund(trade, refund, refunded, 0.0)

    timer = threading.Timer(REFUND_DELAY * sb.dispatcher.time_scale, finish)
    timer.daemon = True
    timer.start()
    return refund


def _wechat_refund(sb: Sandbox, p: dict) -> Answer:
    amount = (p.get("amount") or {}).get("refund")
    trade = sb.trades.get(p.get("out_trade_no", ""))
    no = p.get("out_refund_no")
    if trade is None or not no or not isinstance(amount, int) or amount <= 0:
        return _wx_error(400, "PARAM_ERROR", "参数错误")
    with sb.lock:
        refund = sb.refunds.get(no)
        if refund is None:
            refund = _new_refund(sb, trade, no, amount, p.get("notify_url", ""))
    if isinstance(refund, str):
        return _wx_error(403, "NOT_ENOUGH", refund)
    answer = _wx(sb, 200, _refund_json(refund))
    answer.hold = sb._take_fault(trade, "timeout_after_commit")
    return answer


# -- Alipay -----------------------------------------------------------------------------

def _ali(sb: Sandbox, method: str, content: dict) -> Answer:
    return Answer(200, sig.alipay_answer(sb.alipay, method, content).encode(),
                  {"Content-Type": "application/json;charset=utf-8"})


def _ali_fail(sb: Sandbox, method: str, code: str, sub_code: str) -> Answer:
    words = {"40002": "Invalid Arguments", "40004": "Business Failed"}.get(code, "Failed")
    return _ali(sb, method, {"code": code, "msg": words, "sub_code": sub_code,
                             "sub_msg": sub_code})


ALIPAY_STATES = {"NOTPAY": "WAIT_BUYER_PAY", "SUCCESS": "TRADE_SUCCESS",
                 "PAYERROR": "TRADE_CLOSED", "CLOSED": "TRADE_CLOSED"}


def alipay(sb: Sandbox, params: dict[str, str]) -> Answer:
    method = params.get("method", "")
    signed = params.get("app_id") == sb.merchant["alipay_app_id"] and \
        params.get("sign_type") == "RSA2" and sig.alipay_request_ok(sb.hub_alipay, params)
    try:
        biz = json.loads(params.get("biz_content") or "{}")
    except ValueError:
        biz = {}
    sb.log_request(provider="alipay", api=method, signed=signed,
                   out_trade_no=biz.get("out_trade_no"), out_refund_no=biz.get("out_request_no"),
                   amount=biz.get("total_amount", biz.get("refund_amount")))
    if not signed:
        return _ali_fail(sb, method, "40002", "isv.invalid-signature")
    trade = sb.trades.get(biz.get("out_trade_no", ""))
    if sb._take_fault(trade, "server_error"):
        return Answer(500, b"", {})
    if method == "alipay.trade.precreate":
        return _alipay_precreate(sb, method, biz, params.get("notify_url", ""))
    if method == "alipay.data.dataservice.bill.downloadurl.query":
        token = secrets.token_hex(8)
        sb.bills[token] = sandbox_bills.alipay_bill(sb)
        return _ali(sb, method, {"code": "10000", "msg": "Success", "bill_download_url":
                                 f"{sb.base_url}/_sandbox/bills/{token}"})
    if trade is None or trade.provider != "alipay":
        return _ali_fail(sb, method, "40004", "ACQ.TRADE_NOT_EXIST")
    if method == "alipay.trade.query":
        return _ali(sb, method, {"code": "10000", "msg": "Success", "trade_no": trade.reference,
                                 "out_trade_no": trade.out_trade_no,
                                 "trade_status": ALIPAY_STATES[trade.state],
                                 "total_amount": sig.yuan(trade.amount)})
    if method == "alipay.trade.close":
        return _alipay_close(sb, method, trade)
    if method == "alipay.trade.refund":
        return _alipay_refund(sb, method, trade, biz, params.get("notify_url", ""))
    if method == "alipay.trade.fastpay.refund.query":
        refund = sb.refunds.get(biz.get("out_request_no", ""))
        content = {"code": "10000", "msg": "Success", "trade_no": trade.reference,
                   "out_trade_no": trade.out_trade_no, "out_request_no": refund.out_refund_no
                   if refund else biz.get("out_request_no")}
        if refund is not None and refund.state == "SUCCESS":
            content.update(refund_status="REFUND_SUCCESS", refund_amount=sig.yuan(refund.amount))
        return _ali(sb, method, content)
    return _ali_fail(sb, method, "40004", "ACQ.NOT_SUPPORTED")


def _alipay_precreate(sb: Sandbox, method: str, biz: dict, notify_url: str) -> Answer:
    try:
        amount = sig.fen(str(biz["total_amount"]))
        no = str(biz["out_trade_no"])
    except (KeyError, ValueError, ArithmeticError):
        return _ali_fail(sb, method, "40002", "isv.invalid-parameter")
    with sb.lock:
        trade = sb.trades.get(no)
        if trade is not None and trade.amount != amount:
            return _ali_fail(sb, method, "40004", "ACQ.CONTEXT_INCONSISTENT")
        if trade is None:
            trade = sb.trades[no] = Trade("alipay", no, amount, biz.get("subject", ""),
                                          notify_url, {"app_id": sb.merchant["alipay_app_id"]},
                                          faults=set(sb.next_faults))
            sb.next_faults.clear()
    answer = _ali(sb, method, {"code": "10000", "msg": "Success", "out_trade_no": no,
                               "qr_code": f"{sb.base_url}/pay/{no}"})
    answer.hold = sb._take_fault(trade, "timeout_after_commit")
    return answer


def _alipay_close(sb: Sandbox, method: str, trade: Trade) -> Answer:
    """Only a trade waiting for the buyer closes; a paid or closed one is
    ``ACQ.TRADE_STATUS_ERROR`` (an unknown one was ``ACQ.TRADE_NOT_EXIST`` already)."""
    with sb.lock:
        if trade.state != "NOTPAY":
            return _ali_fail(sb, method, "40004", "ACQ.TRADE_STATUS_ERROR")
        trade.state = "CLOSED"
    return _ali(sb, method, {"code": "10000", "msg": "Success", "trade_no": trade.reference,
                             "out_trade_no": trade.out_trade_no})


def _alipay_refund(sb: Sandbox, method: str, trade: Trade, biz: dict,
                   notify_url: str) -> Answer:
    if "refund_fail" in trade.faults:
        return _ali_fail(sb, method, "40004", "ACQ.REASON_TRADE_REFUND_FEE_ERR")
    try:
        amount = sig.fen(str(biz["refund_amount"]))
        no = str(biz.get("out_request_no") or trade.out_trade_no)
    except (KeyError, ValueError, ArithmeticError):
        return _ali_fail(sb, method, "40002", "isv.invalid-parameter")
    with sb.lock:
        refund = sb.refunds.get(no)
        if refund is None:
            refund = _new_refund(sb, trade, no, amount, notify_url)
    if isinstance(refund, str):
        return _ali_fail(sb, method, "40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
    answer = _ali(sb, method, {"code": "10000", "msg": "Success", "trade_no": trade.reference,
                               "out_trade_no": trade.out_trade_no, "fund_change": "N",
                               "refund_fee": sig.yuan(refund.amount)})
    answer.hold = sb._take_fault(trade, "timeout_after_commit")
    return answer
