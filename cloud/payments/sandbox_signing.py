"""The sandbox's side of the providers' signatures, written apart from the adapters on
purpose: a mistake shared by the signer and the verifier would make both agree and both be
wrong. Nothing here imports the adapters (``wechat``, ``alipay``, ``money``); a test holds it.

WeChat: the platform signs ``ts\\nnonce\\nbody\\n`` for answers and notifications; the
merchant's requests are checked over ``METHOD\\nTARGET\\nts\\nnonce\\nbody\\n``; a
notification's resource is sealed with AES-256-GCM under the APIv3 key. Alipay: parameters
sorted by name and joined ``k=v`` with ``&`` (a notification without ``sign_type``), answers
signed over the exact text of their ``*_response`` object.
"""

from __future__ import annotations

import base64
import json
import os
import re
from decimal import Decimal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')


def sign_bytes(key: rsa.RSAPrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


def check_bytes(key: rsa.RSAPublicKey, data: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature), data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


# -- WeChat Pay ---------------------------------------------------------------------------

def wechat_headers(key: rsa.RSAPrivateKey, key_id: str, body: bytes, when: int,
                   nonce: str | None = None) -> dict[str, str]:
    """The five headers of a signed answer or notification."""
    nonce = nonce or os.urandom(16).hex().upper()
    lines = b"".join(part + b"\n" for part in (str(when).encode(), nonce.encode(), body))
    return {"Wechatpay-Timestamp": str(when), "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": sign_bytes(key, lines), "Wechatpay-Serial": key_id,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}


def wechat_authorization(header: str) -> dict[str, str] | None:
    scheme, _, rest = header.partition(" ")
    if scheme != "WECHATPAY2-SHA256-RSA2048":
        return None
    return dict(AUTH_FIELD.findall(rest))


def wechat_request_ok(key: rsa.RSAPublicKey, method: str, target: str, body: bytes,
                      fields: dict[str, str]) -> bool:
    """Whether the merchant signed this request (``target``: path and query as sent)."""
    try:
        parts = [method.encode(), target.encode(), fields["timestamp"].encode(),
                 fields["nonce_str"].encode(), body]
        return check_bytes(key, b"".join(p + b"\n" for p in parts), fields["signature"])
    except KeyError:
        return False


def wechat_seal(apiv3_key: bytes, plain: dict, associated: str) -> dict:
    nonce = os.urandom(6).hex()           # 12 characters, used as 12 bytes
    sealed = AESGCM(apiv3_key).encrypt(nonce.encode(), json.dumps(plain).encode(),
                                       associated.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(sealed).decode(),
            "nonce": nonce, "associated_data": associated, "original_type": "transaction"}


# -- Alipay --------------------------------------------------------------------------------

def alipay_text(params: dict[str, str], *, without: tuple[str, ...] = ("sign",)) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k not in without and v != "")
    return "&".join(f"{k}={v}" for k, v in pairs)


def alipay_request_ok(key: rsa.RSAPublicKey, params: dict[str, str]) -> bool:
    return "sign" in params and check_bytes(key, alipay_text(params).encode(), params["sign"])


def alipay_notification(key: rsa.RSAPrivateKey, fields: dict[str, str]) -> dict[str, str]:
    """The notification's fields with ``sign_type`` and a ``sign`` made without it."""
    signature = sign_bytes(key, alipay_text(fields, without=("sign", "sign_type")).encode())
    return {**fields, "sign_type": "RSA2", "sign": signature}


def alipay_answer(key: rsa.RSAPrivateKey, method: str, content: dict) -> str:
    """``{"<method>_response": {...}, "sign": "…"}`` signed over the object's exact text."""
    text = json.dumps(content, ensure_ascii=False)
    name = method.replace(".", "_") + "_response"
    return "{" + json.dumps(name) + ":" + text + ',"sign":' + \
        json.dumps(sign_bytes(key, text.encode())) + "}"


def yuan(fen: int) -> str:
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


def fen(text: str) -> int:
    value = Decimal(text) * 100
    if value != value.to_integral_value():
        raise ValueError(text)
    return int(value)
