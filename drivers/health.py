"""Bookkeeping for a driver's :class:`~drivers.base.Health`: counters, the last good exchange,
and the rule that turns consecutive failures into DEGRADED and then DOWN."""

from __future__ import annotations

import time
from collections import Counter

from drivers.base import DeviceState, Health


class HealthTracker:
    """``down_after`` consecutive failed exchanges make the device DOWN; fewer make it
    DEGRADED; one good exchange makes it UP again."""

    def __init__(self, down_after: int = 3):
        self.down_after = down_after
        self.state = DeviceState.UNKNOWN
        self.detail = ""
        self.counts: Counter[str] = Counter()
        self.consecutive_failures = 0
        self.last_ok: float | None = None
        self.last_rtt_ms: float | None = None

    def ok(self, rtt_s: float | None = None) -> None:
        self.counts["exchanges"] += 1
        self.consecutive_failures = 0
        self.last_ok = time.monotonic()
        if rtt_s is not None:
            self.last_rtt_ms = round(rtt_s * 1000, 2)
        self.state, self.detail = DeviceState.UP, ""

    def failed(self, kind: str, detail: str) -> bool:
        """Count one failed exchange of ``kind`` (timeout, checksum, garbage, …); True when
        that makes the device DOWN."""
        self.counts["exchanges"] += 1
        self.counts[kind] += 1
        self.consecutive_failures += 1
        self.detail = detail
        down = self.consecutive_failures >= self.down_after
        self.state = DeviceState.DOWN if down else DeviceState.DEGRADED
        return down

    def count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] += n

    def opened(self) -> None:
        self.consecutive_failures = 0
        self.state, self.detail = DeviceState.UP, ""

    def down(self, detail: str) -> None:
        self.state, self.detail = DeviceState.DOWN, detail

    def snapshot(self, **extra: float | int | str | None) -> Health:
        metrics: dict[str, float | int | str | None] = dict(self.counts)
        metrics["consecutive_failures"] = self.consecutive_failures
        metrics["last_ok_age_s"] = (None if self.last_ok is None
                                    else round(time.monotonic() - self.last_ok, 3))
        metrics["last_rtt_ms"] = self.last_rtt_ms
        metrics.update(extra)
        return Health(self.state, self.detail, metrics)
