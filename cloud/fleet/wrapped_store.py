"""Signing keys kept in the database wrapped under a key-encryption key outside it.

For a hub without a PKCS#11 token. The key-encryption key (KEK) is 32 random bytes in an
owner-only (0600) file, ``kek_path`` of :mod:`cloud.fleet.signers`; it is made once (by
``wicket-hub init`` through migration 0016, or when the first key is made) and never written
to the database. A private key is stored as ``version ‖ nonce ‖ AES-256-GCM(raw key)`` with the
key id and public key as associated data, so a wrapped key copied onto another row does not
open. A database dump or backup alone holds no usable private key.

A missing KEK file is made only while no wrapped key exists: a new KEK could never open the
keys wrapped under a lost one, so then the refusal says the file must be restored.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import stat
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cloud.fleet.key_store import WRAPPED, KeyRow, NewKey, SigningKeyError

log = logging.getLogger(__name__)
VERSION = 1
CONTEXT = b"wicket-hub signing key v1"


def _aad(key_id: int, public_raw: bytes) -> bytes:
    return CONTEXT + bytes((key_id,)) + public_raw


def wrap_private(kek: bytes, key_id: int, private_raw: bytes, public_raw: bytes) -> bytes:
    """The stored form of a private key (32 raw bytes) under ``kek``."""
    nonce = secrets.token_bytes(12)
    return bytes((VERSION,)) + nonce + AESGCM(kek).encrypt(
        nonce, private_raw, _aad(key_id, public_raw))


def unwrap_private(kek: bytes, key_id: int, wrapped: bytes, public_raw: bytes) -> bytes:
    """The raw private key; :class:`InvalidTag` when ``kek`` is not the one it was wrapped
    under, or the row was tampered with."""
    if not wrapped or wrapped[0] != VERSION or len(wrapped) != 1 + 12 + 32 + 16:
        raise InvalidTag
    return AESGCM(kek).decrypt(wrapped[1:13], wrapped[13:], _aad(key_id, public_raw))


def read_kek(path: Path) -> bytes:
    """The KEK from its file; refuses a file others may read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text("ascii")
    except FileNotFoundError:
        raise SigningKeyError("key_file_unusable", path=str(path), reason="missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SigningKeyError("key_file_unusable", path=str(path),
                              reason=getattr(e, "strerror", None) or "not text") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError("key_file_unusable", path=str(path),
                              reason=f"readable by others: chmod 600 {path}")
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SigningKeyError("key_file_unusable", path=str(path),
                              reason="not 32 bytes in base64")
    return key


def make_kek(path: Path) -> bool:
    """Make the KEK file if it does not exist (atomically: of several processes starting at
    once, one makes it); True when this call made it."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(base64.b64encode(secrets.token_bytes(32)).decode("ascii") + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        log.info("created the key-encryption key %s", path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


class WrappedKeystore:
    name = WRAPPED

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._keys: dict[tuple[int, bytes, bytes], Ed25519PrivateKey] = {}

    def describe(self) -> str:
        return f"wrapped under the key-encryption key in {self.path}"

    def generate(self, key_id: int, may_create_kek: bool = True) -> NewKey:
        if may_create_kek:
            make_kek(self.path)
        private = Ed25519PrivateKey.generate()
        public_raw = private.public_key().public_bytes_raw()
        return NewKey(public_raw=public_raw, wrapped_private=wrap_private(
            read_kek(self.path), key_id, private.private_bytes_raw(), public_raw))

    def signer(self, row: KeyRow) -> Ed25519PrivateKey:
        """The row's key, unwrapped. The key file is read every time (a file made readable
        by others, removed or replaced stops signing at once); the unwrapping is remembered."""
        kek = read_kek(self.path)
        wrapped = bytes(row.wrapped_private or b"")
        cache_key = (row.key_id, wrapped, kek)
        with self._lock:
            cached = self._keys.get(cache_key)
        if cached is not None:
            return cached
        try:
            raw = unwrap_private(kek, row.key_id, wrapped, base64.b64decode(row.public_key))
        except InvalidTag:
            raise SigningKeyError("key_does_not_unwrap", key_id=row.key_id,
                                  path=str(self.path)) from None
        private = Ed25519PrivateKey.from_private_bytes(raw)
        with self._lock:
            self._keys[cache_key] = private
        return private

    def destroy(self, row: KeyRow) -> None:
        """Nothing to do outside the row, which forgets its wrapped key; drop it from memory."""
        with self._lock:
            for cached in [k for k in self._keys if k[0] == row.key_id]:
                del self._keys[cached]
