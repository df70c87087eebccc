"""Signed allowlist files: the hub's export of one venue's allowlist, for an appliance that has
lost its network for long (carried on a USB stick, or uploaded on its emergency page).

The file is UTF-8 JSON lines, in three parts:

* line 1, the header: ``{"format": "wicket-allowlist", "version": 1, "venue": {"id": 1,
  "code": "OSC"}, "exported_at": ISO, "count": N, "cursor": SEQ}``;
* ``count`` lines, one allowlist change each (the records of ``sync/changes.py``, as the sync
  API sends them), oldest first; never a ``key`` record;
* the last line, the signature: ``{"key_id": K, "sha256": HEX, "signature": BASE64}``.

``sha256`` is the SHA-256 of every byte before the signature line (header and changes, each
line ending in ``\\n``); ``signature`` is the Ed25519 signature, by the hub's ticket-signing key
``K``, of ``CONTEXT`` followed by those 32 digest bytes. The context string keeps a signature
over a file from ever being taken for a ticket code's, which the same key signs (a code's
bytes begin with its version byte, 1).

The appliance verifies the file against the hub keys it already holds, which reached it only
through the authenticated sync (or the enrollment answer). A file therefore cannot bring a key
of its own: the reader refuses any ``key`` record, whatever its signature. Everything that can
be wrong with a file is one :class:`SignedFileError` with a message for the operator.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sync.keys import SigningKey
from sync.timeutil import to_iso

FORMAT = "wicket-allowlist"
VERSION = 1
CONTEXT = b"wicket signed allowlist file v1\n"
MAX_FILE_BYTES = 1024 * 1024 * 1024


class SignedFileError(ValueError):
    """A file that is not a valid signed allowlist; the message says why, for the operator."""


@dataclass(frozen=True)
class SignedAllowlist:
    """A verified file: its header, the key that signed it, and its change lines (still text,
    each with its line number, for the caller to parse against the sync schema)."""

    venue_id: int
    venue_code: str
    key_id: int
    exported_at: str
    cursor: int
    lines: list[tuple[int, bytes]]


def _message(digest: bytes) -> bytes:
    return CONTEXT + digest


def sign(changes: Iterable[dict[str, Any]], key: SigningKey, venue: dict[str, Any],
         now: datetime, cursor: int | None = None) -> bytes:
    """The signed file of ``changes`` for ``venue`` (``{"id", "code"}``). Key records are left
    out: an appliance takes keys only from the sync."""
    changes = list(changes)  # read twice below
    body_lines = [json.dumps(c, ensure_ascii=False, sort_keys=True) for c in changes
                  if c.get("type") != "key"]
    seqs = [c.get("seq", 0) for c in changes]
    header = {"format": FORMAT, "version": VERSION,
              "venue": {"id": venue["id"], "code": venue["code"]},
              "exported_at": to_iso(now), "count": len(body_lines),
              "cursor": cursor if cursor is not None else max(seqs, default=0)}
    body = "".join(line + "\n" for line in
                   [json.dumps(header, ensure_ascii=False, sort_keys=True), *body_lines])
    data = body.encode("utf-8")
    digest = hashlib.sha256(data).digest()
    trailer = {"key_id": key.key_id, "sha256": digest.hex(),
               "signature": base64.b64encode(key.private_key.sign(_message(digest))).decode()}
    return data + json.dumps(trailer, sort_keys=True).encode("ascii") + b"\n"


def _json_line(line: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        obj = None
    if not isinstance(obj, dict):
        raise SignedFileError(f"not a signed allowlist: unreadable {what}")
    return obj


def read(data: bytes, key_for: Callable[[int], Ed25519PublicKey | None],
         expected_venue: int | None = None) -> SignedAllowlist:
    """Verify ``data`` and return its header and change lines.

    ``key_for(key_id)`` gives the public key the appliance trusts under that id now, or None;
    ``expected_venue`` is the appliance's venue id (None before it knows one). Refuses files
    that are unsigned, signed by an unknown key or by another key than the id claims, changed
    after signing, made for another venue, or carrying a key record."""
    if len(data) > MAX_FILE_BYTES:
        raise SignedFileError("the file is too large to be an allowlist export")
    stripped = data.rstrip(b"\n")
    first_end = stripped.find(b"\n")
    head = _header(stripped[:first_end] if first_end >= 0 else stripped)
    cut = stripped.rfind(b"\n")
    if cut < 0:
        raise SignedFileError("not signed by the hub: the signature line is missing")
    body, trailer = stripped[:cut + 1], _json_line(stripped[cut + 1:], "signature line")
    key_id = _check_signature(body, trailer, key_for)
    venue = head.get("venue")
    if (not isinstance(venue, dict) or not _is_int(venue.get("id"))
            or not isinstance(venue.get("code"), str)):
        raise SignedFileError("not a signed allowlist: the header names no venue")
    if expected_venue is not None and venue["id"] != expected_venue:
        raise SignedFileError(f"this file is for venue {venue['code']!r} (id {venue['id']}), "
                              f"not for this appliance's venue (id {expected_venue})")
    lines = [(n, line) for n, line in enumerate(body.split(b"\n")[1:-1], start=2)
             if line.strip()]
    if not _is_int(head.get("count")) or len(lines) != head["count"]:
        raise SignedFileError(f"the header announces {head.get('count')!r} changes, the file "
                              f"holds {len(lines)}")
    return SignedAllowlist(venue["id"], venue["code"], key_id, str(head.get("exported_at")),
                           head["cursor"] if _is_int(head.get("cursor")) else 0, lines)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _header(line: bytes) -> dict[str, Any]:
    try:
        head = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        head = None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        if isinstance(head, dict) and "type" in head and "op" in head:
            raise SignedFileError("not signed by the hub: this is a plain list of changes; "
                                  "only the hub's signed export (the venue's page, or "
                                  "wicket-hub export-allowlist) can be imported")
        raise SignedFileError("not a signed allowlist export (wrong format)")
    if head.get("version") != VERSION:
        raise SignedFileError(f"signed allowlist version {head.get('version')!r} is not "
                              "supported here")
    return head


def _check_signature(body: bytes, trailer: dict[str, Any],
                     key_for: Callable[[int], Ed25519PublicKey | None]) -> int:
    key_id = trailer.get("key_id")
    if not _is_int(key_id) or not isinstance(trailer.get("signature"), str):
        raise SignedFileError("not signed by the hub: the signature line is missing or "
                              "incomplete")
    public = key_for(key_id) if 1 <= key_id <= 255 else None
    if public is None:
        raise SignedFileError(f"signed with hub key {key_id}, which this appliance does not "
                              "trust (keys reach it only by sync with the hub)")
    digest = hashlib.sha256(body).digest()
    if trailer.get("sha256") != digest.hex():
        raise SignedFileError("the file was changed after the hub signed it (its SHA-256 "
                              "differs)")
    try:
        signature = base64.b64decode(trailer["signature"], validate=True)
        public.verify(signature, _message(digest))
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignedFileError(f"the signature does not match hub key {key_id}: the file was "
                              "changed or was not signed by the hub") from None
    return key_id
