"""The audit log: what people and devices did to tickets, entries and personal data.

Actions are dotted names (``allowlist.import``, ``entry.override``); ``detail`` is JSON and,
like every other place, never holds unmasked personal data.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sync.timeutil import to_iso, utcnow


def record(conn: sqlite3.Connection, actor: str, action: str, subject: str = "",
           detail: dict[str, Any] | None = None) -> None:
    """Append one audit row (inside the caller's transaction, if one is open)."""
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
        (to_iso(utcnow()), actor, action, subject,
         json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)))
