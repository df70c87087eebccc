"""The providers' signature rules as the research recorded them (docs/payments.md), checked
on the adapters, and against the sandbox's own signing code, which shares nothing with them."""

from __future__ import annotations

import ast
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from cloud.payments import sandbox_signing as sandbox
from cloud.payments import transport
from cloud.payments.alipay import (
    Alipay,
    AlipaySettings,
    notification_content,
    response_text,
    sign_content,
)
from cloud.payments.errors import PaymentError
from cloud.payments.money import fen_to_yuan, yuan_to_fen
from cloud.payments.transport import Answer
from cloud.payments.wechat import (
    WeChatPay,
    WeChatSettings,
    decrypt_resource,
    parse_bill,
    request_message,
    signed_message,
    verify_platform_signature,
)

PAYMENTS = Path(__file__).resolve().parents[3] / "cloud" / "payments"
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PLATFORM = rsa.generate_private_key(public_exponent=65537, key_size=2048)
APIV3 = b"0123456789abcdef0123456789abcdef"


def _wechat(**over) -> WeChatPay:
    s = dict(endpoint="http://127.0.0.1:9", mchid="1900000001", appid="wx1", serial_no="AB12",
             private_key=KEY, platform_key=PLATFORM.public_key(), platform_key_id="PUB_KEY_ID_1",
             apiv3_key=APIV3)
    s.update(over)
    return WeChatPay(WeChatSettings(**s), now=lambda: NOW)


def test_a_wechat_request_is_signed_over_five_lines_each_ending_in_a_newline():
    assert request_message("POST", "/v3/pay/transactions/native", "1554208460", "593BEC",
                           '{"a":1}') == \
        b'POST\n/v3/pay/transactions/native\n1554208460\n593BEC\n{"a":1}\n'
    assert request_message("GET", "/v3/certificates?x=1", "1", "n", "") == \
        b"GET\n/v3/certificates?x=1\n1\nn\n\n"
    assert signed_message("1", "n", b"{}") == b"1\nn\n{}\n"


def test_the_authorization_header_verifies_with_the_merchants_public_key():
    header = _wechat().authorization("POST", "/v3/refund/domestic/refunds", '{"x":"退"}')
    assert header.startswith("WECHATPAY2-SHA256-RSA2048 ")
    fields = sandbox.wechat_authorization(header)
    assert set(fields) == {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}
    assert (fields["mchid"], fields["serial_no"], fields["timestamp"]) == (
        "1900000001", "AB12", str(int(NOW.timestamp())))
    assert sandbox.wechat_request_ok(KEY.public_key(), "POST", "/v3/refund/domestic/refunds",
                                     '{"x":"退"}'.encode(), fields)
    assert not sandbox.wechat_request_ok(KEY.public_key(), "POST", "/v3/refund/domestic/refunds",
                                         b'{"x":"tampered"}', fields)


def _signed(body: bytes, when: datetime, key=PLATFORM, key_id="PUB_KEY_ID_1") -> dict:
    return sandbox.wechat_headers(key, key_id, body, int(when.timestamp()))


def test_a_platform_signature_verifies_within_five_minutes_with_the_configured_key():
    body = b'{"id":"1"}'
    adapter = _wechat()
    for skew in (timedelta(0), timedelta(minutes=4, seconds=59), -timedelta(minutes=4)):
        verify_platform_signature(adapter.s, _signed(body, NOW + skew), body, NOW)


@pytest.mark.parametrize("case,code", [
    ("stale", "stale_notification"), ("future", "stale_notification"),
    ("tampered", "bad_signature"), ("signtest", "bad_signature"),
    ("wrong_key", "bad_signature"), ("wrong_serial", "bad_signature"),
    ("missing_header", "bad_signature"), ("other_type", "bad_signature"),
    ("not_base64", "bad_signature")])
def test_a_platform_signature_is_refused(case, code):
    body = b'{"id":"1"}'
    headers = _signed(body, NOW)
    if case == "stale":
        headers = _signed(body, NOW - timedelta(minutes=5))
    elif case == "future":
        headers = _signed(body, NOW + timedelta(minutes=6))
    elif case == "tampered":
        body = b'{"id":"2"}'
    elif case == "signtest":
        headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    elif case == "wrong_key":
        headers = _signed(body, NOW, key=KEY)
    elif case == "wrong_serial":
        headers = _signed(body, NOW, key_id="PUB_KEY_ID_2")
    elif case == "missing_header":
        del headers["Wechatpay-Nonce"]
    elif case == "other_type":
        headers["Wechatpay-Signature-Type"] = "WECHATPAY2-SM2-WITH-SM3"
    elif case == "not_base64":
        headers["Wechatpay-Signature"] = "***"
    with pytest.raises(PaymentError) as e:
        verify_platform_signature(_wechat().s, headers, body, NOW)
    assert e.value.code == code


def test_a_resource_is_opened_with_the_apiv3_key_and_its_associated_data_only():
    sealed = sandbox.wechat_seal(APIV3, {"out_trade_no": "T1"}, "transaction")
    assert len(sealed["nonce"]) == 12
    assert decrypt_resource(APIV3, sealed) == {"out_trade_no": "T1"}
    for broken in ({**sealed, "associated_data": "refund"},
                   {**sealed, "ciphertext": base64.b64encode(b"x" * 40).decode()}):
        with pytest.raises(PaymentError):
            decrypt_resource(APIV3, broken)
    with pytest.raises(PaymentError):
        decrypt_resource(b"f" * 32, sealed)


def test_alipay_signs_every_parameter_but_sign_sorted_with_raw_values():
    params = {"method": "alipay.trade.precreate", "app_id": "2021", "sign_type": "RSA2",
              "biz_content": '{"subject":"决赛 & more","total_amount":"0.01"}',
              "notify_url": "", "sign": "old", "charset": "utf-8"}
    assert sign_content(params) == (
        'app_id=2021&biz_content={"subject":"决赛 & more","total_amount":"0.01"}'
        "&charset=utf-8&method=alipay.trade.precreate&sign_type=RSA2")
    assert notification_content({"b": "2", "a": "1", "sign": "s", "sign_type": "RSA2",
                                 "c": ""}) == "a=1&b=2"


def test_the_adapters_alipay_request_verifies_with_the_apps_public_key_and_not_tampered():
    adapter = Alipay(AlipaySettings("http://127.0.0.1:9", "2021", "2088", KEY,
                                    PLATFORM.public_key()), now=lambda: NOW)
    params = adapter.signed_params("alipay.trade.query", {"out_trade_no": "T1"})
    assert params["timestamp"] == "2026-12-06 16:00:00"      # Beijing time
    assert sandbox.alipay_request_ok(KEY.public_key(), params)
    assert not sandbox.alipay_request_ok(KEY.public_key(), {**params, "app_id": "2022"})


def test_an_alipay_answer_is_verified_over_its_exact_response_text():
    raw = sandbox.alipay_answer(PLATFORM, "alipay.trade.query",
                                {"code": "10000", "msg": "Success", "subject": 'a "}{" b'})
    text = response_text(raw, "alipay_trade_query_response")
    assert json.loads(text)["subject"] == 'a "}{" b'
    assert raw.index(text) > 0 and raw[raw.index(text) + len(text):].startswith(',"sign"')
    spaced = '{"x_response" : {"a": {"b": "}"}, "c": "\\"{"} , "sign": "s"}'
    assert response_text(spaced, "x_response") == '{"a": {"b": "}"}, "c": "\\"{"}'
    assert response_text('{"error_response":{}}', "x_response") is None


@given(st.integers(min_value=0, max_value=10**12))
def test_fen_and_yuan_convert_exactly_both_ways(fen):
    text = fen_to_yuan(fen)
    assert yuan_to_fen(text) == fen and text == sandbox.yuan(fen)
    assert len(text.split(".")[1]) == 2


@pytest.mark.parametrize("bad", ["0.001", "abc", "1e-3", "NaN", "Infinity", ""])
def test_a_yuan_string_that_is_not_whole_fen_is_refused(bad):
    with pytest.raises(ValueError):
        yuan_to_fen(bad)


def test_amounts_are_never_floats():
    with pytest.raises(ValueError):
        fen_to_yuan(12.5)
    assert fen_to_yuan(1) == "0.01" and yuan_to_fen("`100.10") == 10_010


def test_the_wechat_bill_is_read_by_column_name_in_fen():
    text = ("\ufeff交易时间,商户订单号,微信订单号,交易状态,订单金额,商户退款单号,申请退款金额\r\n"
            "`2026-12-06 10:00:00,`T1,`4200,`SUCCESS,`30.99,`,`0.00\r\n"
            "`2026-12-06 11:00:00,`T1,`4200,`REFUND,`30.99,`R1,`10.01\r\n"
            "总交易单数,应结订单总金额\r\n`2,`30.99\r\n")
    rows = parse_bill(text.encode().decode("utf-8-sig"))
    assert [(r.kind, r.out_trade_no, r.amount, r.out_refund_no) for r in rows] == [
        ("payment", "T1", 3099, None), ("refund", "T1", 1001, "R1")]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_the_sandbox_shares_no_code_with_the_adapters():
    adapters = {"cloud.payments.wechat", "cloud.payments.alipay", "cloud.payments.money",
                "cloud.payments.keys", "cloud.payments.settings"}
    for path in PAYMENTS.glob("sandbox*.py"):
        assert not _imports(path) & adapters, path.name
    for name in ("wechat", "alipay", "money", "checkout", "notifications", "refunds", "api"):
        assert not any("sandbox" in i for i in _imports(PAYMENTS / f"{name}.py")), name


@given(st.dictionaries(st.text(max_size=8), st.one_of(
    st.text(max_size=12), st.integers(), st.lists(st.text(max_size=4), max_size=3)),
    max_size=5), st.booleans())
def test_the_response_text_is_found_exactly_whatever_it_holds(content, ascii_only):
    text = json.dumps(content, ensure_ascii=ascii_only)
    raw = '{"alipay_trade_query_response":' + text + ',"sign":"x"}'
    assert response_text(raw, "alipay_trade_query_response") == text


def test_a_wechat_close_is_a_signed_post_naming_the_merchant_and_closed_already_is_closed(
        monkeypatch):
    sent, answers = [], [Answer(204, {}, b""),
                         Answer(400, {}, b'{"code":"ORDER_CLOSED","message":"closed"}'),
                         Answer(403, {}, b'{"code":"TRADE_ERROR","message":"paid"}'),
                         Answer(404, {}, b'{"code":"ORDER_NOT_EXIST","message":"none"}')]
    monkeypatch.setattr(transport, "send", lambda provider, method, url, **kw: (
        sent.append((method, url, kw["headers"], kw["body"])), answers.pop(0))[1])
    adapter = _wechat()
    assert adapter.close("T1") is None and adapter.close("T1") is None
    method, url, headers, body = sent[0]
    path = "/v3/pay/transactions/out-trade-no/T1/close"
    assert (method, url, json.loads(body)) == ("POST", "http://127.0.0.1:9" + path,
                                               {"mchid": "1900000001"})
    fields = sandbox.wechat_authorization(headers["Authorization"])
    assert sandbox.wechat_request_ok(KEY.public_key(), "POST", path, body, fields)
    # paid meanwhile, or unknown: refused, so the caller asks where the trade stands
    for detail in ("403 TRADE_ERROR", "404 ORDER_NOT_EXIST"):
        with pytest.raises(PaymentError) as e:
            adapter.close("T1")
        assert (e.value.code, e.value.params["detail"]) == ("provider_refused", detail)
