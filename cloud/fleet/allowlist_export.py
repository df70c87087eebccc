"""A venue's allowlist as a signed file, for an appliance that has been without the network for
long: downloaded from the venue's page or written by ``wicket-hub export-allowlist``, carried
on a USB stick, and imported on the appliance's emergency page or with ``wicket-edge import``.

The file holds the venue's whole change log as a sync from cursor 0 would bring it (the
compacted log, key records left out) and is signed with the hub's active ticket-signing key,
which every appliance of the venue already holds from the sync; the format is in
``sync/allowlist_file.py`` and docs/sync-agent.md. It carries holder names and document numbers
in clear, as the sync does (the appliance seals them on arrival), so it is made only for
admins, and every export is audited.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.catalog.tables import venues
from cloud.core.audit import record
from cloud.core.changes import changes_since, last_seq, open_changes
from cloud.core.errors import Code, HubError
from cloud.fleet.keys import SigningKeyError, active_key
from sync import allowlist_file
from sync.timeutil import utcnow

PAGE = 5000


class ExportError(HubError):
    """An export that cannot be made."""

    codes = {
        "unknown_venue": Code(404, "no venue '%(venue)s'"),
        "no_active_key": SigningKeyError.codes["no_active_key"],
    }


@dataclass(frozen=True)
class AllowlistExport:
    name: str
    data: bytes
    changes: int
    key_id: int
    venue_code: str


def find_venue(conn: sa.Connection, venue: str | int):
    """A venue by its id or its code."""
    query = sa.select(venues.c.id, venues.c.code)
    if isinstance(venue, int) or str(venue).isdigit():
        row = conn.execute(query.where(venues.c.id == int(venue))).first()
    else:
        row = None
    if row is None:
        row = conn.execute(query.where(venues.c.code == str(venue))).first()
    if row is None:
        raise ExportError("unknown_venue", venue=venue)
    return row


def export_allowlist(conn: sa.Connection, venue: str | int, actor: str,
                     now: datetime | None = None) -> AllowlistExport:
    """The venue's signed allowlist file, audited in the caller's transaction."""
    now = now or utcnow()
    v = find_venue(conn, venue)
    try:
        key = active_key(conn)
    except SigningKeyError:
        raise ExportError("no_active_key") from None
    top = last_seq(conn, v.id)
    changes: list[dict] = []
    cursor = 0
    while True:
        page = changes_since(conn, v.id, cursor, PAGE, upto=top)
        changes += open_changes(conn, page)  # the appliance seals holders itself
        if len(page) < PAGE:
            break
        cursor = page[-1]["seq"]
    data = allowlist_file.sign(changes, key, {"id": v.id, "code": v.code}, now, cursor=top)
    count = sum(1 for c in changes if c["type"] != "key")
    record(conn, actor, "venue.export_allowlist", f"venue:{v.id}", None,
           {"key_id": key.key_id, "changes": count, "cursor": top,
            "sha256": hashlib.sha256(data).hexdigest()})
    name = f"wicket-allowlist-{_safe(v.code)}-{now:%Y%m%dT%H%M%SZ}.jsonl"
    return AllowlistExport(name, data, count, key.key_id, v.code)


def _safe(code: str) -> str:
    """A venue code as a file name may carry it."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in code)[:40]
