"""The merchant's keys for the online providers, as files: made for a sandbox or a test with
:func:`make_merchant_keys`, or, in production, the ones the providers' consoles issued.

The hub reads its private keys and the providers' public keys from the files its settings
name (``cloud/payments/settings.py``); a provider (or the sandbox) is given only ``public/``:
the merchant's public keys, its WeChat certificate serial and the APIv3 key, which WeChat
and the merchant share (it is set in the merchant console).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PRIVATE = {"wechat": "wechat_merchant_private.pem", "alipay": "alipay_app_private.pem"}
PUBLIC = {"wechat": "wechat_merchant_public.pem", "alipay": "alipay_app_public.pem"}
APIV3_KEY = "wechat_apiv3.key"
MERCHANT = "merchant.json"


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def make_merchant_keys(folder: str | Path, mchid: str = "1900000001",
                       app_id: str = "2021000000000001") -> dict[str, str]:
    """New RSA-2048 merchant keys (PKCS#8) and an APIv3 key in ``folder``, the part a provider
    may see in ``folder/public``; returns the hub's settings that name them."""
    folder = Path(folder)
    (folder / "public").mkdir(parents=True, exist_ok=True)
    apiv3 = secrets.token_hex(16).encode()        # 32 characters, as WeChat's console asks
    serial = secrets.token_hex(20).upper()
    for provider in ("wechat", "alipay"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write(folder / PRIVATE[provider], key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), private=True)
        _write(folder / "public" / PUBLIC[provider], key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            private=False)
    for where in (folder, folder / "public"):
        _write(where / APIV3_KEY, apiv3, private=True)
    _write(folder / "public" / MERCHANT, json.dumps(
        {"wechat_mchid": mchid, "wechat_serial_no": serial, "alipay_app_id": app_id}).encode(),
        private=False)
    return {"WECHAT_PAY_MCHID": mchid, "WECHAT_PAY_SERIAL_NO": serial,
            "WECHAT_PAY_PRIVATE_KEY": str(folder / PRIVATE["wechat"]),
            "WECHAT_PAY_APIV3_KEY": str(folder / APIV3_KEY), "ALIPAY_APP_ID": app_id,
            "ALIPAY_PRIVATE_KEY": str(folder / PRIVATE["alipay"])}


def load_private_key(path: str | Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path}: not an RSA private key")
    return key


def load_public_key(path: str | Path) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"{path}: not an RSA public key")
    return key


def sandbox_settings(published: str | Path) -> dict[str, str]:
    """The hub's settings that point the online providers at a running sandbox, from what it
    published (its address, its public keys and ids) — with :func:`make_merchant_keys`'s,
    everything the hub needs."""
    folder = Path(published)
    info = json.loads((folder / "sandbox.json").read_text())
    return {"WECHAT_PAY_ENDPOINT": info["url"], "WECHAT_PAY_APPID": "wx0000000000sandbox",
            "WECHAT_PAY_PLATFORM_KEY": str(folder / "wechat_platform_public.pem"),
            "WECHAT_PAY_PLATFORM_KEY_ID": info["wechat_platform_key_id"],
            "ALIPAY_GATEWAY": info["url"] + "/gateway.do",
            "ALIPAY_SELLER_ID": info["alipay_seller_id"],
            "ALIPAY_PUBLIC_KEY": str(folder / "alipay_public.pem")}
