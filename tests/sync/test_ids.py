import uuid

from sync.ids import uuid7, uuid7_time_ms
from sync.timeutil import from_iso, to_iso


def test_uuid7_is_version_7_and_carries_the_time():
    u = uuid7(now_ms=4_000_000_000_123)
    assert u.version == 7
    assert u.variant == uuid.RFC_4122
    assert uuid7_time_ms(u) == 4_000_000_000_123


def test_uuid7_increases_within_one_millisecond_and_beyond():
    ids = [uuid7(now_ms=1_750_000_000_000) for _ in range(5000)] + [uuid7() for _ in range(100)]
    assert ids == sorted(ids, key=lambda u: u.int)
    assert len(set(ids)) == len(ids)


def test_iso_round_trip_is_fixed_width_utc():
    text = to_iso(from_iso("2026-07-01T19:02:11+02:00"))
    assert text == "2026-07-01T17:02:11.000000Z"
    assert from_iso(text).utcoffset().total_seconds() == 0
