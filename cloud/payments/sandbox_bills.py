"""The sandbox's daily statements, in the providers' layouts: WeChat's trade bill (UTF-8 with
a BOM, ``\\r\\n``, every field prefixed with a backtick, amounts in yuan, a summary after the
details) and Alipay's (a CSV in GBK inside a zip, ``#`` lines around it, refunds negative).
A sandbox statement lists every trade and refund it holds, whatever the day asked."""

from __future__ import annotations

import io
import secrets
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from cloud.payments import sandbox_signing as sig
from cloud.payments.sandbox import Refund

CHINA = timezone(timedelta(hours=8))
WECHAT_COLUMNS = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,"
                  "交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,"
                  "商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
                  "手续费,费率,订单金额,申请退款金额,费率备注").split(",")
ALIPAY_COLUMNS = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,"
                  "操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,"
                  "支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,"
                  "卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注").split(",")


def _when(moment: datetime | None) -> str:
    return (moment or datetime.now(UTC)).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def _statement(sb, provider: str) -> tuple[list, list]:
    """The paid trades and the refunds the statement lists, after the statement faults asked
    for (each applies to the latest payment, and once)."""
    with sb.lock:
        faults, sb.bill_faults = set(sb.bill_faults), set()
        paid = [t for t in sb.trades.values()
                if t.provider == provider and t.state == "SUCCESS"]
        refunds = [r for r in sb.refunds.values()
                   if r.provider == provider and r.state == "SUCCESS"]
    if paid and "bill_wrong_amount" in faults:
        paid[-1] = replace(paid[-1], amount=paid[-1].amount + 1)
    if paid and "bill_missing" in faults:
        paid.pop()
    if paid and "bill_extra" in faults:
        paid.append(replace(paid[-1], out_trade_no="extra" + secrets.token_hex(8),
                            reference="4200" + secrets.token_hex(8)))
    if paid and "bill_duplicate" in faults:
        paid.append(paid[-1])
    if paid and "bill_unknown_refund" in faults:
        refunds.append(Refund(provider, paid[-1].out_trade_no, "unasked" + secrets.token_hex(8),
                              min(100, paid[-1].amount), "", state="SUCCESS"))
    sb.last_bill_faults = faults
    return paid, refunds


def _trade_of(sb, paid: list, refund):
    return sb.trades.get(refund.out_trade_no) or next(
        t for t in paid if t.out_trade_no == refund.out_trade_no)


def wechat_bill(sb) -> bytes:
    lines = [",".join(WECHAT_COLUMNS)]
    paid, refunds = _statement(sb, "wechat")
    for t in paid:
        row = dict.fromkeys(WECHAT_COLUMNS, "")
        row.update({"交易时间": _when(t.paid_at), "公众账号ID": t.merchant["appid"],
                    "商户号": t.merchant["mchid"], "微信订单号": t.reference,
                    "商户订单号": t.out_trade_no, "交易类型": "NATIVE", "交易状态": "SUCCESS",
                    "货币种类": "CNY", "应结订单金额": sig.yuan(t.amount),
                    "订单金额": sig.yuan(t.amount), "商品名称": t.description.replace(",", " ")})
        lines.append(",".join("`" + row[c] for c in WECHAT_COLUMNS))
    for r in refunds:
        t = _trade_of(sb, paid, r)
        row = dict.fromkeys(WECHAT_COLUMNS, "")
        row.update({"交易时间": _when(None), "公众账号ID": t.merchant["appid"],
                    "商户号": t.merchant["mchid"], "微信订单号": t.reference,
                    "商户订单号": t.out_trade_no, "交易类型": "NATIVE", "交易状态": "REFUND",
                    "货币种类": "CNY", "微信退款单号": r.refund_id,
                    "商户退款单号": r.out_refund_no, "退款金额": sig.yuan(r.amount),
                    "退款状态": "SUCCESS", "订单金额": sig.yuan(t.amount),
                    "申请退款金额": sig.yuan(r.amount)})
        lines.append(",".join("`" + row[c] for c in WECHAT_COLUMNS))
    paid_total = sum(t.amount for t in paid)
    refund_total = sum(r.amount for r in refunds)
    lines.append("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,"
                 "申请退款总金额")
    lines.append(f"`{len(paid) + len(refunds)},`{sig.yuan(paid_total)},"
                 f"`{sig.yuan(refund_total)},`0.00,`0.00,`{sig.yuan(paid_total)},"
                 f"`{sig.yuan(refund_total)}")
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def alipay_bill(sb) -> bytes:
    lines = ["#支付宝业务明细查询", f"#账号：[{sb.seller_id}]",
             f"#起始日期：[{_when(None)}]", ",".join(ALIPAY_COLUMNS)]
    paid, refunds = _statement(sb, "alipay")
    for t in paid:
        row = dict.fromkeys(ALIPAY_COLUMNS, "")
        row.update({"支付宝交易号": t.reference, "商户订单号": t.out_trade_no,
                    "业务类型": "交易", "商品名称": t.description.replace(",", " "), "创建时间": _when(t.paid_at),
                    "完成时间": _when(t.paid_at), "订单金额（元）": sig.yuan(t.amount),
                    "商家实收（元）": sig.yuan(t.amount)})
        lines.append(",".join(row[c] for c in ALIPAY_COLUMNS))
    for r in refunds:
        t = _trade_of(sb, paid, r)
        row = dict.fromkeys(ALIPAY_COLUMNS, "")
        row.update({"支付宝交易号": t.reference, "商户订单号": t.out_trade_no,
                    "业务类型": "退款", "商品名称": t.description.replace(",", " "), "创建时间": _when(None),
                    "完成时间": _when(None), "订单金额（元）": "-" + sig.yuan(r.amount),
                    "商家实收（元）": "-" + sig.yuan(r.amount), "退款批次号/请求号": r.out_refund_no})
        lines.append(",".join(row[c] for c in ALIPAY_COLUMNS))
    lines.append("#-----------------------------------------业务明细列表结束"
                 "------------------------------------")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("20880000000000010156_业务明细.csv", "\r\n".join(lines).encode("gbk"))
    return buffer.getvalue()
