"""Allowlist changes: the records the hub sends down and the edge applies.

One change is one JSON object: ``type`` (what it is about), ``op`` (``upsert`` or ``delete``),
``seq`` (its position in the hub's change log, which becomes the row's version on the edge)
and the fields of its type. The same records travel in sync pages and in allowlist files
(JSON lines) carried on a USB stick. :func:`parse_change` checks one record against the
schema below and returns it with its fields typed; it raises :class:`ChangeError` naming the
field and what is wrong.

Holder records carry names and document numbers in clear: they travel only over an
authenticated channel, and the edge seals them the moment they arrive. So does a ``holder``
block that names its document (``doc_type`` and ``doc_number``, a risk flag of the hub): the
hub cannot make the appliance's keyed hash, so it sends the document and the appliance keeps
only its own hash of it. A holder block without a document names that hash in ``value``
itself (older records, and blocks made on the appliance's side).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sync.identity import DocumentError, normalize_document
from sync.names import DIRECTIONS, TICKET_KINDS, TICKET_ROLES
from sync.timeutil import from_iso

OPS = ("upsert", "delete")
TICKET_STATES = ("issued", "void", "refunded")
REALNAME_MODES = ("ticket", "ticket_and_id", "id_only")
BLOCK_KINDS = ("ticket", "rfid", "holder")
MAX_TEXT = 200


class ChangeError(ValueError):
    """A change record that does not fit the schema; the message names the field."""


@dataclass(frozen=True)
class Change:
    type: str
    op: str
    seq: int
    key: tuple
    data: dict[str, Any]


def _int(lo: int = 0, hi: int = 2**53) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("must be an integer")
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return v

    return check


def _text(max_len: int = MAX_TEXT, allow_empty: bool = True) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if not isinstance(v, str):
            raise ValueError("must be a string")
        if len(v) > max_len:
            raise ValueError(f"must be at most {max_len} characters")
        if not allow_empty and not v.strip():
            raise ValueError("must not be empty")
        return v

    return check


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return v

    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def _time(v: Any) -> datetime:
    if not isinstance(v, str):
        raise ValueError("must be an ISO 8601 time string")
    try:
        return from_iso(v)
    except ValueError:
        raise ValueError("must be an ISO 8601 time with a UTC offset") from None


def _ids(max_items: int = 32) -> Callable[[Any], tuple[int, ...]]:
    one = _int(1)

    def check(v: Any) -> tuple[int, ...]:
        if not isinstance(v, list) or not 1 <= len(v) <= max_items:
            raise ValueError(f"must be a list of 1 to {max_items} ids")
        return tuple(sorted({one(x) for x in v}))

    return check


def _zone_ids(v: Any) -> tuple[int, ...]:
    if not isinstance(v, list):
        raise ValueError("must be a list of zone ids")
    one = _int(1)
    return tuple(sorted({one(x) for x in v}))


def _uid(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("must be a hex string")
    uid = normalize_uid(v)
    if not uid:
        raise ValueError("must be 4 to 10 bytes of hex (e.g. 04A1B2C3D4E5F6)")
    return uid


def normalize_uid(text: str) -> str:
    """An RFID UID as upper-case hex without separators; '' when it is not 4..10 bytes of hex."""
    uid = text.strip().replace(":", "").replace(" ", "").replace("-", "").upper()
    if not 8 <= len(uid) <= 20 or len(uid) % 2 or any(c not in "0123456789ABCDEF" for c in uid):
        return ""
    return uid


def _digest(v: Any) -> str:
    if not isinstance(v, str) or len(v) != 32 or any(c not in "0123456789abcdef" for c in v):
        raise ValueError("must be 32 lower-case hex characters (sync.codes.digest)")
    return v


def _public_key(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("must be base64 text")
    try:
        raw = base64.b64decode(v, validate=True)
    except binascii.Error:
        raise ValueError("must be base64 text") from None
    if len(raw) != 32:
        raise ValueError("must be a raw 32-byte Ed25519 public key in base64")
    return v


# name -> (check, required, default). Fields not listed are refused.
_ID = _int(1)
SCHEMA: dict[str, tuple[tuple[str, ...], dict[str, tuple[Callable[[Any], Any], bool, Any]]]] = {
    "venue": (("id",), {
        "id": (_ID, True, None),
        "code": (_text(40), False, ""),
        "name": (_text(allow_empty=False), True, None),
        "timezone": (_text(64, allow_empty=False), False, "Asia/Shanghai"),
    }),
    "zone": (("id",), {
        "id": (_ID, True, None),
        "code": (_text(40, allow_empty=False), True, None),
        "name": (_text(allow_empty=False), True, None),
    }),
    "gate": (("id",), {
        "id": (_ID, True, None),
        "code": (_text(40, allow_empty=False), True, None),
        "name": (_text(allow_empty=False), True, None),
        "zones": (_zone_ids, False, ()),
        "reentry": (_bool, False, False),
        "realname_mode": (_choice(REALNAME_MODES), False, "ticket"),
        "open_before_min": (_int(0, 24 * 60), False, 30),
        "close_after_min": (_int(0, 24 * 60), False, 60),
        "manual_entry": (_bool, False, False),
    }),
    "lane": (("id",), {
        "id": (_ID, True, None),
        "code": (_text(40, allow_empty=False), True, None),
        "name": (_text(), False, ""),
        "gate_id": (_ID, True, None),
        "direction": (_choice(DIRECTIONS), False, "in"),
        "passage_timeout_s": (_int(1, 600), False, 10),
        "enabled": (_bool, False, True),
    }),
    "session": (("id",), {
        "id": (_ID, True, None),
        "venue_id": (_ID, True, None),
        "name": (_text(allow_empty=False), True, None),
        "starts_at": (_time, True, None),
        "ends_at": (_time, True, None),
        "gates_open_at": (_time, False, None),
    }),
    "key": (("key_id",), {
        "key_id": (_int(1, 255), True, None),
        "public_key": (_public_key, True, None),
        "retired_at": (_time, False, None),
    }),
    "holder": (("id",), {
        "id": (_ID, True, None),
        "name": (_text(allow_empty=False), True, None),
        "doc_type": (_text(40, allow_empty=False), True, None),
        "doc_number": (_text(40, allow_empty=False), True, None),
    }),
    "ticket": (("id",), {
        "id": (_int(1, 2**40 - 1), True, None),
        "number": (_text(40, allow_empty=False), True, None),
        "serial": (_int(0, 65535), False, 0),
        "kind": (_choice(TICKET_KINDS), False, "session"),
        "role": (_choice(TICKET_ROLES), False, "ticket"),
        "scope": (_ids(), True, None),
        "zone_id": (_int(0), False, 0),
        "seat_id": (_int(1), False, None),
        "seat": (_text(60), False, None),
        "valid_from": (_time, False, None),
        "valid_until": (_time, False, None),
        "daily_limit": (_int(0, 1000), False, 0),
        "realname": (_bool, False, False),
        "state": (_choice(TICKET_STATES), False, "issued"),
        "rfid_uid": (_uid, False, None),
        "code_digest": (_digest, False, None),
        "holder_id": (_ID, False, None),
    }),
    "revocation": (("ticket_id",), {
        "ticket_id": (_int(1, 2**40 - 1), True, None),
        "serial_below": (_int(1, 65536), False, None),
        "reason": (_text(80, allow_empty=False), True, None),
        "revoked_at": (_time, False, None),
    }),
    "block": (("kind", "value"), {
        "kind": (_choice(BLOCK_KINDS), True, None),
        "value": (_text(80, allow_empty=False), True, None),
        "reason": (_text(), False, ""),
        "doc_type": (_text(40, allow_empty=False), False, None),
        "doc_number": (_text(40, allow_empty=False), False, None),
    }),
}


def parse_change(obj: Any) -> Change:
    if not isinstance(obj, dict):
        raise ChangeError("a change must be a JSON object")
    kind = obj.get("type")
    if kind not in SCHEMA:
        raise ChangeError(f"type: must be one of {', '.join(SCHEMA)} (got {kind!r})")
    op = obj.get("op")
    if op not in OPS:
        raise ChangeError(f"op: must be upsert or delete (got {op!r})")
    try:
        seq = _int(0)(obj.get("seq"))
    except ValueError as e:
        raise ChangeError(f"seq: {e}") from None
    key_fields, fields = SCHEMA[kind]
    unknown = sorted(set(obj) - set(fields) - {"type", "op", "seq"})
    if unknown:
        raise ChangeError(f"{kind}: unknown field {unknown[0]!r}")
    data: dict[str, Any] = {}
    for name, (check, required, default) in fields.items():
        needed = required and (op == "upsert" or name in key_fields)
        if name not in obj or obj[name] is None:
            if needed:
                raise ChangeError(f"{kind}.{name}: required")
            if op == "upsert" or name in key_fields:
                data[name] = default
            continue
        try:
            data[name] = check(obj[name])
        except ValueError as e:
            raise ChangeError(f"{kind}.{name}: {e}") from None
    if op == "upsert":
        _check_consistency(kind, data)
    else:
        data = {k: data[k] for k in key_fields}
    return Change(kind, op, seq, tuple(data[k] for k in key_fields), data)


def _check_consistency(kind: str, d: dict[str, Any]) -> None:
    if kind == "block":
        _check_block_document(d)
    if kind == "session":
        if d["ends_at"] <= d["starts_at"]:
            raise ChangeError("session.ends_at: must be after starts_at")
        if d["gates_open_at"] is not None and d["gates_open_at"] > d["starts_at"]:
            raise ChangeError("session.gates_open_at: must not be after starts_at")
    if kind == "ticket":
        if (d["valid_from"] is None) != (d["valid_until"] is None):
            raise ChangeError("ticket.valid_until: valid_from and valid_until go together")
        if d["valid_from"] is not None and d["valid_until"] <= d["valid_from"]:
            raise ChangeError("ticket.valid_until: must be after valid_from")
        if d["kind"] == "session" and len(d["scope"]) != 1:
            raise ChangeError("ticket.scope: a session ticket names exactly one session")
        if d["kind"] == "venues" and d["valid_from"] is None:
            raise ChangeError("ticket.valid_from: a venue pass needs a validity window")


def _check_block_document(d: dict[str, Any]) -> None:
    """A block's document: both fields or neither, on a holder block only, and a number its
    type accepts (the appliance hashes its normalised form)."""
    if d["doc_type"] is None and d["doc_number"] is None:
        return
    if d["kind"] != "holder":
        raise ChangeError("block.doc_number: only a holder block names a document")
    if d["doc_type"] is None or d["doc_number"] is None:
        raise ChangeError("block.doc_number: doc_type and doc_number go together")
    try:
        d["doc_number"] = normalize_document(d["doc_type"], d["doc_number"])
    except DocumentError as e:
        raise ChangeError(f"block.doc_number: {e.code}") from None
