"""The wire of the name-and-number verification service as the hub speaks it ("idcheck v1"),
both sides: the hub's adapter (``cloud/buyers/verification.py``) and the sandbox
(``cloud/buyers/idcheck_sandbox.py``).

- The hub asks ``POST <url>/v1/verify`` with a JSON body ``{"request_id", "name",
  "doc_type", "number"}``, authenticated by ``X-Idcheck-App`` (its app id) and
  ``X-Idcheck-Signature``: base64 of HMAC-SHA256 of the body under the app secret the service
  issued.
- The service answers 200 with a JSON body ``{"request_id", "answer_id", "result",
  "answered_at"}`` (``result``: ``match``, ``no_match`` or ``unavailable``), signed with its
  Ed25519 key: ``X-Idcheck-Signature`` is base64 of the signature of the exact body bytes. The
  hub checks the signature with the service's public key, and that the answer names the
  request it asked: an unsigned, forged or tampered answer, or one replayed from another
  request, is refused and never believed. 5xx and 429 mean "try again later".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PATH = "/v1/verify"
APP_HEADER = "X-Idcheck-App"
SIGNATURE_HEADER = "X-Idcheck-Signature"
RESULTS = ("match", "no_match", "unavailable")
PUBLIC_KEY = "idcheck_public.pem"
APP_SECRET = "idcheck_app.key"
INFO = "idcheck.json"


def request_signature(secret: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode("ascii")


def request_ok(secret: bytes, body: bytes, signature: str | None) -> bool:
    return bool(signature) and hmac.compare_digest(request_signature(secret, body),
                                                   signature or "")


def sign_answer(key: Ed25519PrivateKey, body: bytes) -> str:
    return base64.b64encode(key.sign(body)).decode("ascii")


def answer_ok(key: Ed25519PublicKey, body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    try:
        key.verify(base64.b64decode(signature, validate=True), body)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def publish(folder: str | Path, url: str, key: Ed25519PrivateKey, app_id: str,
            app_secret: bytes) -> None:
    """What a hub needs to use a service (the sandbox's, made at its start): its public key,
    the app id and secret it issued, and its address."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / PUBLIC_KEY, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), False)
    _write(folder / APP_SECRET, app_secret, True)
    _write(folder / INFO, json.dumps({"url": url, "app_id": app_id}).encode(), False)


def new_app() -> tuple[str, bytes]:
    """An app id and secret, as a service issues them."""
    return f"app{secrets.token_hex(6)}", secrets.token_hex(32).encode()


def sandbox_settings(published: str | Path) -> dict[str, str]:
    """The hub's settings that point it at a running sandbox, from what it published."""
    folder = Path(published)
    info = json.loads((folder / INFO).read_text())
    return {"IDCHECK_PROVIDER": "idcheck", "IDCHECK_URL": info["url"],
            "IDCHECK_APP_ID": info["app_id"], "IDCHECK_APP_SECRET": str(folder / APP_SECRET),
            "IDCHECK_PUBLIC_KEY": str(folder / PUBLIC_KEY)}
