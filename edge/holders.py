"""Holder data: the one place the appliance takes its personal-data helpers from.

Everything on the edge that validates, masks, seals or looks up a holder's name or document
number imports it from here. The document rules and the masking rules are shared with the hub
and live in :mod:`sync.identity`; this module re-exports them unchanged, so both sides accept
the same numbers and show the same masked values.

What this module adds is holder data at rest on the appliance:

* a sealed value is ``version byte || 96-bit nonce || AES-256-GCM ciphertext and tag``, with a
  fresh random nonce for every value and the row and column (``holder:55:name``) as associated
  data, so a value copied to another row or column does not open;
* the sealing key and the index key are two independent HKDF-SHA256 subkeys of the appliance's
  ``holder_key``, which lives in the configuration file and never in the database;
* lookups by document use an HMAC-SHA256 of the document type and the normalised number under
  the index key, so the database holds no number and no unkeyed hash of one (the space of
  resident ID numbers is small enough to search exhaustively).

No error raised here carries a key, a name or a full document number.
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

from sync.identity import (
    DOC_LABELS,
    DOC_TYPES,
    DocumentError,
    gb11643_check,
    mask_document,
    mask_name,
    normalize_document,
)

__all__ = [
    "DOC_LABELS",
    "DOC_TYPES",
    "DocumentError",
    "HolderDataError",
    "HolderKeyError",
    "HolderVault",
    "SEAL_VERSION",
    "gb11643_check",
    "generate_holder_key",
    "mask_document",
    "mask_name",
    "normalize_document",
]

SEAL_VERSION = 1
KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_SEAL_INFO = b"wicket holder seal v1"
_INDEX_INFO = b"wicket holder index v1"
_BINARY = (bytes, bytearray, memoryview)


class HolderKeyError(ValueError):
    """The holder key in the configuration is not usable; the message never shows the key."""


class HolderDataError(Exception):
    """A sealed value that does not open: wrong key, wrong row or column, tampered or garbage.

    The message names the context (``holder:55:name``) and never any plaintext.
    """


def generate_holder_key() -> str:
    """A new random 32-byte holder key as standard base64 text, for the appliance config."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _key_bytes(master_key: str | bytes) -> bytes:
    """The raw key from base64 text (standard or URL-safe, padding optional) or raw bytes."""
    if isinstance(master_key, str):
        text = master_key.strip()
        if not text:
            raise HolderKeyError("the holder key is empty")
        text = text.translate(str.maketrans("-_", "+/"))
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise HolderKeyError("the holder key is not base64 text; a new appliance gets one "
                                 "from `wicket-edge init`") from None
        if len(raw) != KEY_BYTES:
            raise HolderKeyError(f"the holder key must decode to {KEY_BYTES} bytes, not "
                                 f"{len(raw)}")
    elif isinstance(master_key, _BINARY):
        raw = bytes(master_key)
        if len(raw) != KEY_BYTES:
            raise HolderKeyError(f"a raw holder key must be {KEY_BYTES} bytes, not {len(raw)} "
                                 "(pass base64 text as str)")
    else:
        raise HolderKeyError("the holder key must be base64 text or raw bytes, not "
                             f"{type(master_key).__name__}")
    if not any(raw):
        raise HolderKeyError("the holder key is all zero bytes: a placeholder, not a key")
    return raw


def _subkey(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(master)


def _context_bytes(context: str) -> bytes:
    if not isinstance(context, str) or not context:
        raise ValueError("a sealing context such as 'holder:55:name' is required")
    return context.encode("utf-8")


class HolderVault:
    """Seals and opens holder values, and computes the keyed document hash for lookups."""

    def __init__(self, master_key: str | bytes):
        raw = _key_bytes(master_key)
        self._aead = AESGCM(_subkey(raw, _SEAL_INFO))
        self._index_key = _subkey(raw, _INDEX_INFO)

    def __repr__(self) -> str:
        return "HolderVault(<key hidden>)"

    def seal(self, value: str, context: str) -> bytes:
        """Encrypt ``value`` so that it opens only with this key and this ``context``."""
        if not isinstance(value, str):
            raise TypeError(f"only text is sealed, not {type(value).__name__}")
        aad = _context_bytes(context)
        nonce = os.urandom(_NONCE_BYTES)
        return (bytes((SEAL_VERSION,)) + nonce
                + self._aead.encrypt(nonce, value.encode("utf-8"), aad))

    def open(self, blob: bytes, context: str) -> str:
        """The text sealed under ``context``, or HolderDataError if it cannot be trusted."""
        aad = _context_bytes(context)
        if not isinstance(blob, _BINARY):
            raise HolderDataError(f"{context}: not a sealed holder value "
                                  f"({type(blob).__name__})")
        blob = bytes(blob)
        if len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise HolderDataError(f"{context}: not a sealed holder value (too short)")
        if blob[0] != SEAL_VERSION:
            raise HolderDataError(f"{context}: not a sealed holder value (unknown format "
                                  f"version {blob[0]})")
        nonce, sealed = blob[1:1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES:]
        try:
            plain = self._aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise HolderDataError(f"{context}: cannot open: wrong key, sealed for another row "
                                  "or column, or tampered with") from None
        return plain.decode("utf-8")

    def doc_hash(self, doc_type: str, number: str) -> str:
        """HMAC-SHA256 (hex) of ``doc_type:normalised number``; DocumentError if invalid."""
        canonical = normalize_document(doc_type, number)
        return hmac.new(self._index_key, f"{doc_type}:{canonical}".encode(),
                        hashlib.sha256).hexdigest()
