"""What Alipay stands behind is a signed ``*_response``: anything else (an unsigned
error_response, a proxy's page) or a signed "try again" (20000, ACQ.SYSTEM_ERROR) is not a
refusal, so a refund asked that way stays to be asked again with its number, never ends as
failed (which would free its amount for another refund of the same money)."""

from __future__ import annotations

import json

import pytest

from cloud.payments import sandbox_signing as signer
from cloud.payments import transport
from cloud.payments.errors import PaymentError
from cloud.payments.settings import make_providers, payment_settings
from cloud.payments.transport import Answer

REFUND = "alipay.trade.refund"
CLOSE = "alipay.trade.close"


def _answer_with(monkeypatch, status: int, body: str) -> None:
    monkeypatch.setattr(transport, "send", lambda *a, **k: Answer(status, {}, body.encode()))


@pytest.mark.parametrize(("status", "body"), [
    (200, '{"error_response":{"code":"40002","msg":"Invalid Arguments"}}'),
    (403, "<html><body>Forbidden by the proxy</body></html>"),
    (200, ""),
])
def test_an_answer_alipay_did_not_sign_is_no_refusal(provider_side, monkeypatch, status, body):
    alipay = make_providers(payment_settings(provider_side.settings, {}))["alipay"]
    _answer_with(monkeypatch, status, body)
    with pytest.raises(PaymentError) as e:
        alipay.refund("T1", "R1", 100, 100, "x", "https://hub.example/n")
    assert e.value.code == "provider_unavailable"


@pytest.mark.parametrize(("content", "expected"), [
    ({"code": "20000", "msg": "Service Currently Unavailable"}, "provider_unavailable"),
    ({"code": "40004", "sub_code": "ACQ.SYSTEM_ERROR"}, "provider_unavailable"),
    ({"code": "40004", "sub_code": "ACQ.REASON_TRADE_REFUND_FEE_ERR"}, "failed"),
])
def test_a_signed_try_again_is_asked_again_and_a_signed_no_ends_the_refund(
        provider_side, monkeypatch, content, expected):
    alipay = make_providers(payment_settings(provider_side.settings, {}))["alipay"]
    _answer_with(monkeypatch, 200, signer.alipay_answer(provider_side.alipay, REFUND, content))
    try:
        got = alipay.refund("T1", "R1", 100, 100, "x", "https://hub.example/n").state
    except PaymentError as e:
        got = e.code
    assert got == expected


def test_a_close_is_signed_for_its_trade_and_only_a_signed_success_closes(provider_side,
                                                                          monkeypatch):
    from urllib.parse import parse_qsl

    alipay = make_providers(payment_settings(provider_side.settings, {}))["alipay"]
    sent = []
    answers = [{"code": "10000", "msg": "Success", "out_trade_no": "T1"},
               {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_STATUS_ERROR"}]
    monkeypatch.setattr(transport, "send", lambda *a, **k: (sent.append(k["body"]), Answer(
        200, {}, signer.alipay_answer(provider_side.alipay, CLOSE, answers.pop(0)).encode()))[1])
    assert alipay.close("T1") is None
    params = dict(parse_qsl(sent[0].decode()))
    assert (params["method"], json.loads(params["biz_content"])) == (CLOSE, {"out_trade_no": "T1"})
    assert signer.alipay_request_ok(alipay.s.private_key.public_key(), params)
    with pytest.raises(PaymentError) as e:   # paid (or closed already): asked by query next
        alipay.close("T1")
    assert (e.value.code, e.value.params["detail"]) == ("provider_refused",
                                                        "40004 ACQ.TRADE_STATUS_ERROR")
