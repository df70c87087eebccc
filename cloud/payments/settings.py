"""The payments settings, declared once (name, default, help): read from the app's
configuration, else ``$WICKET_HUB_<NAME>``. Pointing the hub at the sandbox or at the real
providers is a change of these settings only (docs/payments.md lists them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cloud.payments.alipay import Alipay, AlipaySettings
from cloud.payments.errors import PaymentError
from cloud.payments.keys import load_private_key, load_public_key
from cloud.payments.offline import OfflineProvider
from cloud.payments.providers import Provider
from cloud.payments.wechat import WeChatPay, WeChatSettings

SETTINGS: dict[str, tuple[str, str]] = {
    "PAYMENT_PROVIDERS": ("offline", "the providers in use, separated by commas: offline, "
                                     "wechat, alipay"),
    "PAYMENTS_NOTIFY_URL": ("", "the address providers send notifications to, without the "
                                "provider's name (default: HUB_PUBLIC_URL + "
                                "/api/v1/payments/notify)"),
    "PAYMENTS_TIMEOUT": ("10", "seconds to wait for a provider's answer"),
    "WECHAT_PAY_ENDPOINT": ("https://api.mch.weixin.qq.com", "WeChat Pay's API host"),
    "WECHAT_PAY_MCHID": ("", "the merchant id (mchid)"),
    "WECHAT_PAY_APPID": ("", "the app id (appid) payments are made under"),
    "WECHAT_PAY_SERIAL_NO": ("", "the serial number of the merchant's API certificate"),
    "WECHAT_PAY_PRIVATE_KEY": ("", "file: the merchant's API private key (PEM)"),
    "WECHAT_PAY_PLATFORM_KEY": ("", "file: WeChat Pay's platform public key (PEM)"),
    "WECHAT_PAY_PLATFORM_KEY_ID": ("", "that key's id (Wechatpay-Serial, PUB_KEY_ID_…)"),
    "WECHAT_PAY_APIV3_KEY": ("", "file: the 32-character APIv3 key"),
    "ALIPAY_GATEWAY": ("https://openapi.alipay.com/gateway.do", "Alipay's gateway"),
    "ALIPAY_APP_ID": ("", "the app id (app_id)"),
    "ALIPAY_SELLER_ID": ("", "the seller id (2088…) notifications must name"),
    "ALIPAY_PRIVATE_KEY": ("", "file: the app's private key (PEM)"),
    "ALIPAY_PUBLIC_KEY": ("", "file: Alipay's public key (PEM)"),
}


def payment_settings(config: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Each setting from ``config``, else ``$WICKET_HUB_<NAME>``, else its default."""
    return {name: str(config.get(name) or environ.get(f"WICKET_HUB_{name}") or default)
            for name, (default, _help) in SETTINGS.items()}


def _needs(s: Mapping[str, str], *names: str) -> None:
    missing = [n for n in names if not s.get(n)]
    if missing:
        raise ValueError("payments: set " + ", ".join(missing))


def make_providers(s: Mapping[str, str]) -> dict[str, Provider]:
    """The configured providers by name; a provider whose settings are incomplete is an error
    at start, not at the first payment."""
    timeout = float(s["PAYMENTS_TIMEOUT"])
    out: dict[str, Provider] = {}
    for name in (n.strip() for n in s["PAYMENT_PROVIDERS"].split(",") if n.strip()):
        if name == "offline":
            out[name] = OfflineProvider()
        elif name == "wechat":
            _needs(s, "WECHAT_PAY_MCHID", "WECHAT_PAY_APPID", "WECHAT_PAY_SERIAL_NO",
                   "WECHAT_PAY_PRIVATE_KEY", "WECHAT_PAY_PLATFORM_KEY",
                   "WECHAT_PAY_PLATFORM_KEY_ID", "WECHAT_PAY_APIV3_KEY")
            out[name] = WeChatPay(WeChatSettings(
                s["WECHAT_PAY_ENDPOINT"], s["WECHAT_PAY_MCHID"], s["WECHAT_PAY_APPID"],
                s["WECHAT_PAY_SERIAL_NO"], load_private_key(s["WECHAT_PAY_PRIVATE_KEY"]),
                load_public_key(s["WECHAT_PAY_PLATFORM_KEY"]), s["WECHAT_PAY_PLATFORM_KEY_ID"],
                Path(s["WECHAT_PAY_APIV3_KEY"]).read_bytes().strip(), timeout))
        elif name == "alipay":
            _needs(s, "ALIPAY_APP_ID", "ALIPAY_SELLER_ID", "ALIPAY_PRIVATE_KEY",
                   "ALIPAY_PUBLIC_KEY")
            out[name] = Alipay(AlipaySettings(
                s["ALIPAY_GATEWAY"], s["ALIPAY_APP_ID"], s["ALIPAY_SELLER_ID"],
                load_private_key(s["ALIPAY_PRIVATE_KEY"]),
                load_public_key(s["ALIPAY_PUBLIC_KEY"]), timeout))
        else:
            raise ValueError(f"payments: no provider {name!r} (offline, wechat, alipay)")
    return out


def notify_url(s: Mapping[str, str], name: str, public_url: str | None) -> str:
    """Where provider ``name`` sends this hub's notifications: PAYMENTS_NOTIFY_URL, else the
    hub's public address followed by ``/api/v1/payments/notify``; '' when neither is known
    (no absolute address to give a provider)."""
    base = s["PAYMENTS_NOTIFY_URL"] or (
        public_url.rstrip("/") + "/api/v1/payments/notify" if public_url else "")
    return f"{base.rstrip('/')}/{name}" if base else ""


def provider(providers: Mapping[str, Provider], name: str) -> Provider:
    if name not in providers:
        raise PaymentError("unknown_provider", provider=name)
    return providers[name]
