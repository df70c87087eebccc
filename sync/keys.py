"""The hub's signing keys and the set of public keys an appliance trusts.

A signing key is kept as a small JSON file, owner-only: ``{"key_id": 1, "private_key_pem":
"-----BEGIN PRIVATE KEY-----..."}`` (PKCS#8). Public keys travel as the raw 32-byte Ed25519
key in standard base64, the form the allowlist's ``key`` records carry.

The hub signs through whatever holds its private key: an :class:`Ed25519PrivateKey` in memory
(a key file, or a key unwrapped from the hub's database) or a key that never leaves a PKCS#11
token. Both are a :class:`Signer`; the appliance only ever verifies, with a :class:`KeyRing`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class KeyFileError(Exception):
    """A key file or key text that cannot be used; the message says why."""


class Signer(Protocol):
    """Anything that makes Ed25519 signatures with one private key and names its public key:
    :class:`Ed25519PrivateKey` is one, and so is a handle on a key inside a hardware token."""

    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> Ed25519PublicKey: ...


@dataclass(frozen=True)
class SigningKey:
    key_id: int
    private_key: Signer

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_key_b64(self) -> str:
        raw = self.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")


def _check_key_id(key_id: int) -> int:
    if isinstance(key_id, bool) or not isinstance(key_id, int) or not 1 <= key_id <= 255:
        raise KeyFileError(f"key id must be a whole number from 1 to 255, not {key_id!r}")
    return key_id


def generate_signing_key(key_id: int) -> SigningKey:
    return SigningKey(_check_key_id(key_id), Ed25519PrivateKey.generate())


def signing_key_to_json(key: SigningKey) -> str:
    if not isinstance(key.private_key, Ed25519PrivateKey):
        raise KeyFileError(f"key {key.key_id} is held where it cannot be exported")
    pem = key.private_key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode("ascii")
    return json.dumps({"key_id": key.key_id, "private_key_pem": pem}, indent=2) + "\n"


def save_signing_key(key: SigningKey, path: str | os.PathLike) -> None:
    """Write the key owner-only (0600); refuses to overwrite an existing file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; not overwriting a signing key") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(signing_key_to_json(key))


def load_signing_key(path: str | os.PathLike) -> SigningKey:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KeyFileError(f"{path}: not a Wicket signing key file ({e})") from None
    if not isinstance(data, dict) or "private_key_pem" not in data or "key_id" not in data:
        raise KeyFileError(f"{path}: not a Wicket signing key file (key_id, private_key_pem)")
    try:
        private = serialization.load_pem_private_key(data["private_key_pem"].encode("ascii"),
                                                     password=None)
    except (ValueError, TypeError, AttributeError, UnicodeEncodeError):
        raise KeyFileError(f"{path}: the private key is damaged") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return SigningKey(_check_key_id(data["key_id"]), private)


def load_public_key(b64: str) -> Ed25519PublicKey:
    """A raw 32-byte Ed25519 public key from standard base64."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise KeyFileError("public key is not base64 text") from None
    if len(raw) != 32:
        raise KeyFileError(f"public key must be 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


class KeyRing:
    """The hub public keys an appliance trusts, by key id."""

    def __init__(self, keys: Mapping[int, Ed25519PublicKey | str] = ()):
        self._keys: dict[int, Ed25519PublicKey] = {}
        for key_id, key in dict(keys).items():
            self.add(key_id, key)

    def add(self, key_id: int, key: Ed25519PublicKey | str) -> None:
        self._keys[_check_key_id(key_id)] = load_public_key(key) if isinstance(key, str) else key

    def get(self, key_id: int) -> Ed25519PublicKey | None:
        return self._keys.get(key_id)

    def key_ids(self) -> list[int]:
        return sorted(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._keys))
