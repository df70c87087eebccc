"""Applying allowlist changes to the appliance database.

The sync agent and the file importer both come here. A file is imported only when the hub
signed it with a key this appliance already trusts, and never brings a key of its own. A batch of changes and the new cursor
are applied in one ``BEGIN IMMEDIATE`` transaction, so an interrupted download or import
resumes where it stopped. Every row carries the ``seq`` of the change that last wrote it as its
version, and an upsert only wins over an older version: replaying a batch, or receiving it
twice, changes nothing. Holder names and document numbers are sealed before they are written;
the document a holder block names is kept only as this appliance's keyed hash.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.db import immediate
from edge.holders import DocumentError, HolderVault, mask_document, mask_name, normalize_document
from sync import allowlist_file
from sync.allowlist_file import SignedAllowlist, SignedFileError
from sync.changes import Change, ChangeError, parse_change
from sync.keys import KeyFileError, load_public_key
from sync.timeutil import from_iso, to_iso, utcnow

BATCH = 1000


class AllowlistError(Exception):
    """A change that cannot be applied; the message names the record."""


@dataclass
class ApplyResult:
    applied: int = 0
    unchanged: int = 0
    cursor: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    signed_by: int | None = None  # the hub key that signed an imported file
    exported_at: str | None = None


def _t(v):
    return to_iso(v) if v is not None else None


def _guarded_upsert(table: str, row: dict[str, Any], key: str = "id") -> str:
    return _upsert_sql(table, tuple(row), key)


@functools.lru_cache(maxsize=64)
def _upsert_sql(table: str, row: tuple[str, ...], key: str) -> str:
    """The statement text depends only on the table and the columns: built once each."""
    cols = ", ".join(row)
    marks = ", ".join(f":{c}" for c in row)
    sets = ", ".join(f"{c} = excluded.{c}" for c in row if c != key)
    return (f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT({key}) DO UPDATE SET "
            f"{sets} WHERE excluded.version > {table}.version")


def _apply_one(conn: sqlite3.Connection, vault: HolderVault, c: Change) -> bool:
    """Apply one change inside the caller's transaction; True when it changed something."""
    if c.op == "delete":
        return _delete(conn, c)
    apply = _APPLY.get(c.type)
    if apply is None:  # unreachable: parse_change checks
        raise AllowlistError(f"cannot apply a {c.type} change")
    return apply(conn, vault, c.data, c.seq)


def _apply_venue(conn: sqlite3.Connection, vault: HolderVault, d: dict[str, Any], v: int
                 ) -> bool:
    # One appliance serves one venue: the venue record replaces whatever was there.
    cur = conn.execute("SELECT id, version FROM venue").fetchone()
    if cur and cur[1] >= v:
        return False
    conn.execute("DELETE FROM venue")
    conn.execute("INSERT INTO venue (id, code, name, timezone, version) VALUES (?,?,?,?,?)",
                 (d["id"], d["code"], d["name"], d["timezone"], v))
    return True


def _apply_zone(conn: sqlite3.Connection, vault: HolderVault, d: dict[str, Any], v: int
                ) -> bool:
    sql = _guarded_upsert("zones", {"id": d["id"], "code": d["code"], "name": d["name"],
                                    "version": v})
    return conn.execute(sql, {"id": d["id"], "code": d["code"], "name": d["name"],
                              "version": v}).rowcount > 0


def _apply_gate(conn: sqlite3.Connection, vault: HolderVault, d: dict[str, Any], v: int
                ) -> bool:
    row = {k: d[k] for k in ("id", "code", "name", "realname_mode", "open_before_min",
                             "close_after_min")}
    row.update(reentry=int(d["reentry"]), manual_entry=int(d["manual_entry"]), version=v)
    if conn.execute(_guarded_upsert("gates", row), row).rowcount == 0:
        return False
    conn.execute("DELETE FROM gate_zones WHERE gate_id = ?", (d["id"],))
    for zone_id in d["zones"]:
        conn.execute("INSERT OR IGNORE INTO zones (id, code, name) VALUES (?, ?, ?)",
                     (zone_id, str(zone_id), f"Zone {zone_id}"))
        conn.execute("INSERT INTO gate_zones (gate_id, zone_id) VALUES (?, ?)",
                     (d["id"], zone_id))
    return True


def _apply_lane(conn: sqlite3.Connection, vault: HolderVault, d: dict[str, Any], v: int
                ) -> bool:
    if not conn.execute("SELECT 1 FROM gates WHERE id = ?", (d["gate_id"],)).fetchone():
        raise AllowlistError(f"lane {d['code']}: gate {d['gate_id']} does not exist")
    row = (d["id"], d["code"], d["name"], d["gate_id"], d["direction"],
           d["passage_timeout_s"], int(d["enabled"]))
    if conn.execute("SELECT id, code, name, gate_id, direction, passage_timeout_s, enabled "
                    "FROM lanes WHERE id = ?", (d["id"],)).fetchone() == row:
        return False
    conn.execute(
        "INSERT INTO lanes (id, code, name, gate_id, direction, passage_timeout_s, enabled) "
        "VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET code = excluded.code, "
        "name = excluded.name, gate_id = excluded.gate_id, direction = excluded.direction, "
        "passage_timeout_s = excluded.passage_timeout_s, enabled = excluded.enabled", row)
    return True


def _apply_session(conn: sqlite3.Connection, vault: HolderVault, d: dict[str, Any], v: int
                   ) -> bool:
    row = {"id": d["id"], "venue_id": d["venue_id"], "name": d["name"],
           "starts_at": _t(d["starts_at"]), "ends_at": _t(d["ends_at"]),
           "gates_open_at": _t(d["gates_open_at"]), "version": v}
    return conn.execute(_guarded_upsert("sessions", row), row).rowcount > 0


def _apply_key(conn: sqlite3.Connection, vault: HolderVault, d: dict[str, Any], v: int
               ) -> bool:
    return conn.execute(
        "INSERT INTO hub_keys (key_id, public_key, added_at, retired_at) VALUES (?,?,?,?) "
        "ON CONFLICT(key_id) DO UPDATE SET public_key = excluded.public_key, "
        "retired_at = excluded.retired_at WHERE public_key IS NOT excluded.public_key "
        "OR retired_at IS NOT excluded.retired_at",
        (d["key_id"], d["public_key"], to_iso(utcnow()), _t(d["retired_at"]))).rowcount > 0


def _apply_holder(conn: sqlite3.Connection, vault: HolderVault, d: dict[str, Any], v: int
                  ) -> bool:
    cur = conn.execute("SELECT version FROM holders WHERE id = ?", (d["id"],)).fetchone()
    if cur and cur[0] >= v:
        return False
    try:
        number = normalize_document(d["doc_type"], d["doc_number"])
    except DocumentError as e:
        raise AllowlistError(f"holder {d['id']}: {e}") from None
    row = {
        "id": d["id"], "doc_type": d["doc_type"],
        "doc_hash": vault.doc_hash(d["doc_type"], number),
        "name_sealed": vault.seal(d["name"], f"holder:{d['id']}:name"),
        "doc_sealed": vault.seal(number, f"holder:{d['id']}:doc"),
        "name_masked": mask_name(d["name"]), "doc_masked": mask_document(number),
        "version": v,
    }
    conn.execute(_guarded_upsert("holders", row), row)
    return True


def _apply_ticket(conn: sqlite3.Connection, vault: HolderVault, d: dict[str, Any], v: int
                  ) -> bool:
    row = {k: d[k] for k in ("id", "number", "serial", "kind", "role", "zone_id", "seat_id",
                             "seat", "daily_limit", "state", "rfid_uid", "code_digest",
                             "holder_id")}
    row.update(scope=",".join(map(str, d["scope"])), valid_from=_t(d["valid_from"]),
               valid_until=_t(d["valid_until"]), realname=int(d["realname"]), version=v)
    if row["rfid_uid"]:  # a chip moved to another ticket leaves the old one
        cur = conn.execute("SELECT version FROM tickets WHERE id = ?", (d["id"],)).fetchone()
        if cur and cur[0] >= v:
            return False
        conn.execute("UPDATE tickets SET rfid_uid = NULL WHERE rfid_uid = ? AND id <> ?",
                     (row["rfid_uid"], row["id"]))
    try:
        # the guarded upsert writes nothing (rowcount 0) when the row is as new already
        return conn.execute(_guarded_upsert("tickets", row), row).rowcount > 0
    except sqlite3.IntegrityError as e:
        raise AllowlistError(f"ticket {d['id']}: {e}") from None


def _apply_revocation(conn: sqlite3.Connection, vault: HolderVault, d: dict[str, Any], v: int
                      ) -> bool:
    row = {"ticket_id": d["ticket_id"], "serial_below": d["serial_below"],
           "reason": d["reason"], "revoked_at": _t(d["revoked_at"]), "version": v}
    return conn.execute(_guarded_upsert("revocations", row, key="ticket_id"),
                        row).rowcount > 0


def _apply_block(conn: sqlite3.Connection, vault: HolderVault, d: dict[str, Any], v: int
                 ) -> bool:
    """A block. One that names a holder's document (a risk flag of the hub) is kept by the
    hub's ``value``, so its delete finds it, with this appliance's own keyed hash of the
    document, which is what the engine matches holders by; the number is not kept."""
    doc_hash = None
    if d.get("doc_number") is not None:
        try:
            doc_hash = vault.doc_hash(d["doc_type"], d["doc_number"])
        except DocumentError as e:
            raise AllowlistError(f"block {d['value']}: {e.code}") from None
    row = {"kind": d["kind"], "value": d["value"], "reason": d["reason"], "version": v,
           "doc_hash": doc_hash}
    return conn.execute(
        "INSERT INTO blocklist (kind, value, reason, version, doc_hash) VALUES "
        "(:kind, :value, :reason, :version, :doc_hash) ON CONFLICT(kind, value) DO UPDATE SET "
        "reason = excluded.reason, version = excluded.version, doc_hash = excluded.doc_hash "
        "WHERE excluded.version > blocklist.version", row).rowcount > 0


_APPLY: dict[str, Callable[[sqlite3.Connection, HolderVault, dict[str, Any], int], bool]] = {
    "venue": _apply_venue,
    "zone": _apply_zone,
    "gate": _apply_gate,
    "lane": _apply_lane,
    "session": _apply_session,
    "key": _apply_key,
    "holder": _apply_holder,
    "ticket": _apply_ticket,
    "revocation": _apply_revocation,
    "block": _apply_block,
}


_DELETE = {
    "venue": "DELETE FROM venue WHERE id = ?",
    "zone": "DELETE FROM zones WHERE id = ?",
    "gate": "DELETE FROM gates WHERE id = ?",
    "lane": "DELETE FROM lanes WHERE id = ?",
    "session": "DELETE FROM sessions WHERE id = ?",
    "key": "DELETE FROM hub_keys WHERE key_id = ?",
    "holder": "DELETE FROM holders WHERE id = ?",
    "ticket": "DELETE FROM tickets WHERE id = ?",
    "revocation": "DELETE FROM revocations WHERE ticket_id = ?",
    "block": "DELETE FROM blocklist WHERE kind = ? AND value = ?",
}


def _delete(conn: sqlite3.Connection, c: Change) -> bool:
    try:
        return conn.execute(_DELETE[c.type], c.key).rowcount > 0
    except sqlite3.IntegrityError as e:
        raise AllowlistError(f"{c.type} {c.key}: cannot delete: {e}") from None


def apply_changes(conn: sqlite3.Connection, vault: HolderVault, changes: Iterable[Change],
                  cursor: int | None = None, stream: str = "allowlist",
                  received: int = 0) -> ApplyResult:
    """Apply changes and advance the stream's cursor in one transaction (all or nothing).

    ``received`` is added to the stream's count of changes received from the hub, in the same
    transaction, so the count always matches the cursor (the hub's checksum compares it)."""
    result = ApplyResult()
    with immediate(conn):
        for change in changes:
            if _apply_one(conn, vault, change):
                result.applied += 1
                result.counts[change.type] = result.counts.get(change.type, 0) + 1
            else:
                result.unchanged += 1
            result.cursor = max(result.cursor, change.seq)
        if cursor is not None:
            result.cursor = max(result.cursor, cursor)
        conn.execute(
            "UPDATE sync_state SET cursor = max(cursor, ?), last_ok_at = ? WHERE stream = ?",
            (result.cursor, to_iso(utcnow()), stream))
        if received:
            conn.execute("UPDATE sync_state SET changes = changes + ? WHERE stream = ?",
                         (received, stream))
    return result


def _trusted_key(conn: sqlite3.Connection, now: datetime
                 ) -> Callable[[int], Ed25519PublicKey | None]:
    """The hub keys this appliance trusts now (those the sync gave it, not retired yet)."""
    rows = {kid: (pub, retired) for kid, pub, retired in conn.execute(
        "SELECT key_id, public_key, retired_at FROM hub_keys")}

    def key_for(key_id: int) -> Ed25519PublicKey | None:
        row = rows.get(key_id)
        if row is None or (row[1] and from_iso(row[1]) <= now):
            return None
        try:
            return load_public_key(row[0])
        except KeyFileError:
            return None

    return key_for


def own_venue(conn: sqlite3.Connection) -> int | None:
    """The venue this appliance serves: from its allowlist, else from its enrollment."""
    row = conn.execute("SELECT id FROM venue LIMIT 1").fetchone()
    if row is None:
        row = conn.execute("SELECT value FROM appliance_state WHERE key = 'hub_venue_id'"
                           ).fetchone()
    try:
        return int(row[0]) if row and row[0] is not None else None
    except ValueError:
        return None


def read_signed(conn: sqlite3.Connection, data: bytes, name: str,
                now: datetime | None = None) -> tuple[SignedAllowlist, list[Change]]:
    """Verify a signed allowlist file (see ``sync/allowlist_file.py``) against the hub keys
    this appliance holds, and parse its changes; raises AllowlistError naming the file, and
    the line and field where one is wrong. A key record is refused: keys come by sync only."""
    try:
        signed = allowlist_file.read(data, _trusted_key(conn, now or utcnow()), own_venue(conn))
    except SignedFileError as e:
        raise AllowlistError(f"{name}: {e}") from None
    changes = []
    for number, raw in signed.lines:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise AllowlistError(f"{name}:{number}: not UTF-8 text") from None
        try:
            obj = json.loads(line)
        except ValueError as e:  # JSONDecodeError, or a number too long to convert
            raise AllowlistError(f"{name}:{number}: not valid JSON "
                                 f"({getattr(e, 'msg', 'number too long')})") from None
        if isinstance(obj, dict) and obj.get("type") == "key":
            raise AllowlistError(f"{name}:{number}: a hub key record: keys reach the appliance "
                                 "only by sync with the hub, never in a file")
        try:
            change = parse_change(obj)
        except ChangeError as e:
            raise AllowlistError(f"{name}:{number}: {e}") from None
        if change.type == "venue" and change.key != (signed.venue_id,):
            raise AllowlistError(f"{name}:{number}: a venue record for another venue than the "
                                 "file's")
        changes.append(change)
    return signed, changes


def import_file(conn: sqlite3.Connection, vault: HolderVault, path: Path,
                progress: Callable[[int], None] | None = None,
                name: str | None = None) -> ApplyResult:
    """Verify the hub's signature and check the whole file first (nothing is applied if it is
    not signed by a hub key this appliance trusts, or if any line is bad), then apply it in
    batches, each with its cursor, so that an interrupted import resumes safely. ``name`` is
    how messages call the file (default: its path)."""
    name = name or str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise AllowlistError(f"{name}: cannot open: {e.strerror}") from None
    signed, changes = read_signed(conn, data, name)
    total = ApplyResult(signed_by=signed.key_id, exported_at=signed.exported_at)
    for start in range(0, len(changes), BATCH):
        batch = changes[start:start + BATCH]
        try:
            r = apply_changes(conn, vault, batch)
        except AllowlistError as e:
            raise AllowlistError(f"{name}: {e}") from None
        total.applied += r.applied
        total.unchanged += r.unchanged
        total.cursor = max(total.cursor, r.cursor)
        for k, n in r.counts.items():
            total.counts[k] = total.counts.get(k, 0) + n
        if progress:
            progress(start + len(batch))
    return total
