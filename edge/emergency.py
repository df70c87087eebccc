"""Emergency export and import of entry records between appliances, as signed files.

When the network is gone for long, an appliance's entries can be carried on a USB stick to
another appliance of the same venue, so that a ticket admitted at one is known as used at the
other (and both push the records to the hub later: the hub stores each entry id once).

The file is JSON lines, UTF-8:

* line 1, the header: ``{"format": "wicket-entries", "version": 1, "venue": {"id", "code"},
  "appliance": FINGERPRINT, "public_key": BASE64, "exported_at": ISO, "count": N}``;
* one line per entry: the entry's columns (``id``, ``at``, ``day``, ``lane_id``, ``gate_id``,
  ``device_id``, ``direction``, ``scan_kind``, ``scan_ref``, ``ticket_id``, ``session_id``,
  ``admitted``, ``reason``, ``detail``, ``offline_code``, ``cursor``, ``clock_offset_ms``,
  ``imported_from``), in the order they were recorded;
* the last line: ``{"signature": BASE64}``, an Ed25519 signature over every byte before it.

The signing key is derived from the appliance's holder key (HKDF, its own label), so it needs
no new secret and never leaves the box; its fingerprint (the first 16 bytes of SHA-256 of the
public key, in hex groups) is shown on the emergency page. An import verifies the signature,
and accepts a file from another appliance only when the admin gives that appliance's
fingerprint, read off its screen: a file edited, truncated or made up elsewhere is refused.
Entries hold no names or document numbers (an ID-card scan is kept as its keyed hash).
Import is idempotent by entry id: a second import of the same file adds nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from edge import audit
from edge.db import immediate
from edge.reasons import Reason
from sync.timeutil import from_iso, to_iso, utcnow

FORMAT = "wicket-entries"
VERSION = 1
MAX_FILE_BYTES = 512 * 1024 * 1024
COLUMNS = ("id", "at", "day", "lane_id", "gate_id", "device_id", "direction", "scan_kind",
           "scan_ref", "ticket_id", "session_id", "admitted", "reason", "detail", "offline_code",
           "cursor", "clock_offset_ms", "imported_from", "staff")
# columns a file written before they existed may lack (read as null)
OPTIONAL = ("staff",)
_INT_OR_NULL = ("lane_id", "gate_id", "ticket_id", "session_id", "clock_offset_ms")
_TEXT_OR_NULL = ("device_id", "imported_from", "staff")


class ExportFileError(Exception):
    """A file that cannot be imported; the message says why (and on which line)."""


def signing_key(holder_key: str) -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"wicket entry export v1").derive(holder_key.strip().encode("utf-8"))
    return Ed25519PrivateKey.from_private_bytes(seed)


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public: Ed25519PublicKey) -> str:
    digest = hashlib.sha256(_raw(public)).hexdigest()[:32].upper()
    return "-".join(digest[i:i + 4] for i in range(0, 32, 4))


def normalize_fingerprint(text: str) -> str:
    digits = "".join(c for c in text.upper() if c in "0123456789ABCDEF")
    return "-".join(digits[i:i + 4] for i in range(0, len(digits), 4))


def _venue(conn: sqlite3.Connection) -> dict | None:
    row = conn.execute("SELECT id, code FROM venue LIMIT 1").fetchone()
    return {"id": row[0], "code": row[1]} if row else None


def export_entries(conn: sqlite3.Connection, holder_key: str, actor: str,
                   since: str | None = None) -> tuple[str, bytes]:
    """The signed file of every entry (or those at or after ``since``) and its file name."""
    key = signing_key(holder_key)
    fp = fingerprint(key.public_key())
    now = utcnow()
    conn.execute("BEGIN")
    try:
        rows = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM entries WHERE (? IS NULL OR at >= ?) "
            "ORDER BY seq", (since, since)).fetchall()
        venue = _venue(conn)
    finally:
        conn.execute("ROLLBACK")
    header = {"format": FORMAT, "version": VERSION, "venue": venue, "appliance": fp,
              "public_key": base64.b64encode(_raw(key.public_key())).decode(),
              "exported_at": to_iso(now), "count": len(rows), "since": since}
    lines = [json.dumps(header, ensure_ascii=False, sort_keys=True)]
    lines += [json.dumps(dict(zip(COLUMNS, r, strict=True)), ensure_ascii=False, sort_keys=True)
              for r in rows]
    body = ("\n".join(lines) + "\n").encode("utf-8")
    signature = base64.b64encode(key.sign(body)).decode()
    data = body + json.dumps({"signature": signature}).encode() + b"\n"
    audit.record(conn, actor, "entries.export", f"appliance:{fp}",
                 {"count": len(rows), "since": since, "sha256": hashlib.sha256(data).hexdigest()})
    code = (venue or {}).get("code") or "venue"
    name = f"wicket-entries-{code}-{fp[:9]}-{now:%Y%m%dT%H%M%SZ}.jsonl"
    return name, data


@dataclass
class ImportResult:
    appliance: str
    count: int
    added: int
    present: int


def _split(data: bytes) -> tuple[bytes, bytes]:
    if len(data) > MAX_FILE_BYTES:
        raise ExportFileError("the file is too large to be an entry export")
    stripped = data.rstrip(b"\n")
    cut = stripped.rfind(b"\n")
    if cut < 0:
        raise ExportFileError("not an entry export: no header and signature lines")
    return stripped[:cut + 1], stripped[cut + 1:]


def read_export(data: bytes, own_key: Ed25519PrivateKey,
                trusted_fingerprint: str | None) -> tuple[dict, list[dict]]:
    """Verify and parse an export; refuses files that are not signed by this appliance or by
    the one whose fingerprint the admin gave."""
    body, last = _split(data)
    try:
        signature = base64.b64decode(json.loads(last)["signature"], validate=True)
        header = json.loads(body[:body.index(b"\n")])
    except (ValueError, KeyError, TypeError):
        raise ExportFileError("not an entry export: unreadable header or signature") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ExportFileError("not an entry export (wrong format)")
    if header.get("version") != VERSION:
        raise ExportFileError(f"entry export version {header.get('version')!r} is not "
                              "supported here")
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(header["public_key"],
                                                                     validate=True))
        public.verify(signature, body)
    except (InvalidSignature, KeyError, TypeError, ValueError):
        raise ExportFileError("the signature does not match: the file was changed or "
                              "damaged after it was exported") from None
    signer = fingerprint(public)
    if signer != fingerprint(own_key.public_key()):
        if not trusted_fingerprint:
            raise ExportFileError(f"this file comes from appliance {signer}: give that "
                                  "appliance's fingerprint (shown on its emergency page) to "
                                  "import it")
        if normalize_fingerprint(trusted_fingerprint) != signer:
            raise ExportFileError(f"this file was signed by appliance {signer}, not by the "
                                  "appliance whose fingerprint was given")
    entries = []
    for number, line in enumerate(body.split(b"\n")[1:], start=2):
        if not line.strip():
            continue
        entries.append(_check_entry(line, number))
    if len(entries) != header.get("count"):
        raise ExportFileError(f"the header announces {header.get('count')} entries, the file "
                              f"holds {len(entries)}")
    return header, entries


def _check_entry(line: bytes, number: int) -> dict:
    try:
        e = json.loads(line)
    except ValueError:
        raise ExportFileError(f"line {number}: not JSON") from None
    if not isinstance(e, dict) or not set(COLUMNS) - set(OPTIONAL) <= set(e) <= set(COLUMNS):
        raise ExportFileError(f"line {number}: not an entry record")
    e = {name: None for name in OPTIONAL} | e

    def bad(field: str):
        return ExportFileError(f"line {number}: bad {field}")

    if not isinstance(e["id"], str) or len(e["id"]) != 36:
        raise bad("id")
    for name in ("at",):
        try:
            from_iso(e[name])
        except (TypeError, ValueError):
            raise bad(name) from None
    if e["direction"] not in ("in", "out"):
        raise bad("direction")
    if e["reason"] not in Reason.__members__:
        raise bad("reason")
    if e["admitted"] not in (0, 1) or e["offline_code"] not in (0, 1):
        raise bad("admitted")
    for name in ("day", "scan_kind", "scan_ref", "detail"):
        if not isinstance(e[name], str):
            raise bad(name)
    for name in _INT_OR_NULL:
        if e[name] is not None and (not isinstance(e[name], int) or isinstance(e[name], bool)):
            raise bad(name)
    if not isinstance(e["cursor"], int):
        raise bad("cursor")
    for name in _TEXT_OR_NULL:
        if e[name] is not None and not isinstance(e[name], str):
            raise bad(name)
    return e


def import_entries(conn: sqlite3.Connection, holder_key: str, data: bytes, actor: str,
                   trusted_fingerprint: str | None = None, source: str = "") -> ImportResult:
    """Verify ``data`` and add the entries this appliance does not have yet, in one
    transaction. Imported entries go to the hub like local ones (it keeps each id once)."""
    own = signing_key(holder_key)
    header, entries = read_export(data, own, trusted_fingerprint)
    venue = _venue(conn)
    theirs = header.get("venue")
    if venue and theirs and theirs.get("id") != venue["id"]:
        raise ExportFileError(f"this file comes from venue {theirs.get('code')!r}, not from "
                              f"this appliance's venue {venue['code']!r}")
    signer = header["appliance"] if isinstance(header.get("appliance"), str) else ""
    added = 0
    with immediate(conn):
        for e in entries:
            row = dict(e)
            row["imported_from"] = row["imported_from"] or signer
            cols = ", ".join(COLUMNS)
            marks = ", ".join(f":{c}" for c in COLUMNS)
            added += conn.execute(
                f"INSERT INTO entries ({cols}) VALUES ({marks}) ON CONFLICT(id) DO NOTHING",
                row).rowcount
        audit.record(conn, actor, "entries.import", f"appliance:{signer}", {
            "count": len(entries), "added": added, "present": len(entries) - added,
            "source": source, "sha256": hashlib.sha256(data).hexdigest()})
    return ImportResult(signer, len(entries), added, len(entries) - added)


def iter_files(roots: list[str], suffixes: tuple[str, ...] = (".jsonl", ".json")
               ) -> Iterator[str]:
    """Files on mounted USB sticks (under ``roots``) that may be imports, newest first."""
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            if dirpath.count(os.sep) - root.count(os.sep) >= 4:
                dirnames[:] = []
            for name in filenames:
                if name.endswith(suffixes) and not name.startswith("."):
                    path = os.path.join(dirpath, name)
                    try:
                        found.append((os.path.getmtime(path), path))
                    except OSError:
                        continue
    for _, path in sorted(found, reverse=True)[:200]:
        yield path
