"""Keys stay on their side (the hub's private keys never in what a provider sees, the
sandbox's never written), settings are checked at start, and the sandbox's pay page works
as a buyer meets it."""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest
import requests

from cloud.payments.settings import SETTINGS, make_providers, payment_settings

from .conftest import ROOT


def test_payments_keys_writes_private_keys_owner_only_and_a_public_folder_without_them(
        tmp_path):
    out = subprocess.run([sys.executable, "-m", "cloud.cli", "payments-keys", "--dir",
                          str(tmp_path / "k")], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert f"WICKET_HUB_WECHAT_PAY_PRIVATE_KEY={tmp_path / 'k'}" in out
    for name in ("wechat_merchant_private.pem", "alipay_app_private.pem", "wechat_apiv3.key"):
        assert stat.S_IMODE((tmp_path / "k" / name).stat().st_mode) == 0o600
    public = list((tmp_path / "k" / "public").iterdir())
    assert {p.name for p in public} == {"wechat_merchant_public.pem", "alipay_app_public.pem",
                                        "wechat_apiv3.key", "merchant.json"}
    assert not any(b"PRIVATE KEY" in p.read_bytes() for p in public)


def test_the_sandbox_publishes_only_public_keys(sandbox):
    from pathlib import Path

    published = Path(sandbox.settings["ALIPAY_PUBLIC_KEY"]).parent
    assert {p.name for p in published.iterdir()} == {
        "wechat_platform_public.pem", "alipay_public.pem", "sandbox.json"}
    assert not any(b"PRIVATE KEY" in p.read_bytes() for p in published.iterdir())


def test_a_provider_with_incomplete_settings_stops_the_hub_at_start(provider_side):
    with pytest.raises(ValueError, match="WECHAT_PAY_MCHID"):
        make_providers(payment_settings({"PAYMENT_PROVIDERS": "wechat"}, {}))
    with pytest.raises(ValueError, match="no provider"):
        make_providers(payment_settings({"PAYMENT_PROVIDERS": "paypal"}, {}))
    env = {f"WICKET_HUB_{k}": v for k, v in provider_side.settings.items()}
    assert set(make_providers(payment_settings({}, env))) == {"offline", "wechat", "alipay"}
    assert set(make_providers(payment_settings({}, {}))) == {"offline"}
    assert set(SETTINGS) >= {k for k in provider_side.settings}


def test_the_pay_page_shows_the_trade_and_takes_the_buyers_click(hub_server, sandbox):
    from .test_sandbox import _payment, _start

    checkout = _start(hub_server, "alipay", amount=1_050)
    page = requests.get(checkout.qr_text, timeout=30)
    assert page.status_code == 200 and "¥10.50" in page.text and 'value="pay"' in page.text
    paid = requests.post(checkout.qr_text, data={"result": "pay"}, timeout=30)
    assert "Paid · 已支付" in paid.text
    sandbox.wait(checkout.out_trade_no, acked=1, settled=1)
    assert _payment(hub_server, checkout.payment_id).state == "succeeded"
    assert requests.get(sandbox.url + "/pay/unknown", timeout=30).status_code == 404
