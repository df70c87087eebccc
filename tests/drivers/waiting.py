"""Tests wait on conditions with a generous deadline, never on fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable

DEADLINE = 15.0


def until(condition: Callable[[], object], timeout: float = DEADLINE, what: str = "") -> object:
    """Poll ``condition`` until it is truthy; its value, or AssertionError at the deadline."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.005)


def poll_until(turnstile, condition: Callable[[list], bool], timeout: float = DEADLINE) -> list:
    """Poll a turnstile, collecting events, until ``condition(events)`` holds."""
    events: list = []
    end = time.monotonic() + timeout
    while not condition(events):
        if time.monotonic() > end:
            raise AssertionError(f"timed out; events so far: {events}")
        events.extend(turnstile.poll(0.05))
    return events
