"""What an appliance's heartbeat reports (its software, cursors, queue, sync times and devices),
read leniently: a missing or malformed field reads as unknown, never as an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sync.timeutil import from_iso, to_iso


def _iso(dt: datetime | None) -> str | None:
    return to_iso(dt) if dt is not None else None


@dataclass
class Device:
    id: str
    kind: str = ""
    lane: str | None = None
    state: str = "unknown"
    last_scan_at: str | None = None
    since: str | None = None  # when the device entered its state
    errors: int = 0
    error: str | None = None


@dataclass
class Report:
    """What an appliance's last heartbeat said, read leniently: a missing field is None."""

    version: str | None = None
    allowlist_cursor: int | None = None
    queued: int | None = None
    oldest_queued_at: datetime | None = None
    refused: int | None = None
    last_pull_ok_at: datetime | None = None
    last_push_ok_at: datetime | None = None
    devices: list[Device] = field(default_factory=list)


def _first(d: dict, *paths: str) -> Any:
    for path in paths:
        v: Any = d
        for part in path.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if v is not None:
            return v
    return None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _time(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        return from_iso(v)
    except ValueError:
        return None


def read_report(reported: Any) -> Report:
    """The fields ops need from a heartbeat's ``state``; anything malformed reads as unknown."""
    r = reported if isinstance(reported, dict) else {}
    version = _first(r, "software_version", "version")
    devices = []
    for d in _first(r, "devices") or []:
        if not isinstance(d, dict) or d.get("id") is None:
            continue
        errors = _first(d, "errors", "error_count")
        error = _first(d, "error", "last_error", "detail", "state_detail")
        devices.append(Device(
            id=str(d["id"])[:80], kind=str(d.get("kind") or "")[:40],
            lane=str(d["lane"])[:40] if d.get("lane") is not None else None,
            state=str(d.get("state") or "unknown")[:20],
            last_scan_at=_iso(_time(_first(d, "last_scan_at", "last_scan"))),
            since=_iso(_time(_first(d, "state_at", "at"))),
            errors=errors if isinstance(errors, int) else len(errors)
            if isinstance(errors, list) else 0,
            error=str(error)[:200] if error is not None else None))
    return Report(
        version=str(version)[:40] if version is not None else None,
        allowlist_cursor=_int(_first(r, "cursors.allowlist", "allowlist_cursor", "cursor")),
        queued=_int(_first(r, "queue.unsent", "outbox.unsent", "queued")),
        oldest_queued_at=_time(_first(r, "queue.oldest_unsent_at", "outbox.oldest_unsent_at",
                                      "oldest_unsent_at")),
        refused=_int(_first(r, "queue.refused", "outbox.refused", "refused")),
        last_pull_ok_at=_time(_first(r, "last_pull_ok_at", "sync.last_pull_ok_at")),
        last_push_ok_at=_time(_first(r, "last_push_ok_at", "sync.last_push_ok_at")),
        devices=devices)
