"""Holder data: the one place where personal-data helpers live.

Names and document numbers are sealed with AES-GCM under a subkey of the appliance's holder
key (from its configuration file, never the database), with the row and column as associated
data so that a sealed value copied to another row does not open. Lookups by document use a
keyed HMAC of the normalised number. Document rules and masking come from
:mod:`sync.identity`, shared with the hub; screens and logs get masked values only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sync.identity import (  # noqa: F401 - the edge's personal-data helpers, in one import
    DOC_LABELS,
    DOC_TYPES,
    DocumentError,
    gb11643_check,
    mask_document,
    mask_name,
    normalize_document,
)

_SEAL_VERSION = 1


class HolderKeyError(ValueError):
    """The holder key in the configuration is not usable."""


class HolderDataError(Exception):
    """A sealed value that does not open: wrong key, wrong place, or tampered."""

# -- sealing and the keyed index ----------------------------------------------------------------


def generate_holder_key() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")


class HolderVault:
    """Seals and opens holder values, and computes the keyed document hash."""

    def __init__(self, master_key: str | bytes):
        if isinstance(master_key, str):
            try:
                raw = base64.b64decode(master_key.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise HolderKeyError("the holder key is not base64 text") from None
        else:
            raw = bytes(master_key)
        if len(raw) != 32:
            raise HolderKeyError(f"the holder key must be 32 bytes, not {len(raw)}")
        self._aead = AESGCM(_derive(raw, b"wicket holder seal v1"))
        self._index_key = _derive(raw, b"wicket holder index v1")

    def seal(self, value: str, context: str) -> bytes:
        nonce = os.urandom(12)
        return bytes((_SEAL_VERSION,)) + nonce + self._aead.encrypt(
            nonce, value.encode("utf-8"), context.encode("utf-8"))

    def open(self, blob: bytes, context: str) -> str:
        if len(blob) < 1 + 12 + 16 or blob[0] != _SEAL_VERSION:
            raise HolderDataError(f"{context}: not a sealed holder value")
        try:
            plain = self._aead.decrypt(blob[1:13], blob[13:], context.encode("utf-8"))
        except InvalidTag:
            raise HolderDataError(f"{context}: cannot open: wrong key, wrong place or "
                                  "tampered data") from None
        return plain.decode("utf-8")

    def doc_hash(self, doc_type: str, number: str) -> str:
        canonical = normalize_document(doc_type, number)
        return hmac.new(self._index_key, f"{doc_type}:{canonical}".encode(),
                        hashlib.sha256).hexdigest()


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)
