"""Identifiers both sides agree on.

Entries are keyed by UUIDv7 (RFC 9562): the first 48 bits are the Unix time in milliseconds, so
ids sort by creation time and the hub's index on them stays append-mostly. Within one
millisecond the ids of one process still increase: the 12-bit ``rand_a`` field carries a
counter that is seeded randomly each millisecond.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    """A new UUIDv7; monotonic within this process."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        else:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                ms = _last_ms
                _counter = 0
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | _counter << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def uuid7_time_ms(value: uuid.UUID | str) -> int:
    """The Unix time in milliseconds carried by a UUIDv7."""
    u = value if isinstance(value, uuid.UUID) else uuid.UUID(value)
    return u.int >> 80
