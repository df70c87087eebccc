"""Times on the wire and in both databases: aware UTC datetimes, written as ISO 8601 with 'Z'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

# China Standard Time (no daylight saving): the payment providers' clock and statement days,
# and the day a partner's settlement is counted in
CHINA = timezone(timedelta(hours=8), "UTC+8")


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_iso(dt: datetime) -> str:
    """``2026-07-01T17:02:11.123456Z``; fixed width so that text order is time order."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: times must carry a time zone")
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_iso(text: str) -> datetime:
    """Parse an ISO 8601 time that carries an offset; naive times are refused."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {text!r}")
    return dt.astimezone(UTC)
