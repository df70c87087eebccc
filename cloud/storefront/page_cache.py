"""Rendered public pages kept for a moment: on an on-sale minute thousands ask for the same
session page, and the answer rendered a second ago is as good as a new one (what is left
comes from the availability cache, itself at most a second old, and a hold is decided by its
own conditional UPDATE anyway).

A page is kept by its address (its language is in the path) for ``max_age`` seconds and
served from memory, with a weak ETag of its body so a client or a proxy that has it gets
``304``. Only the pages that are the same for everyone are kept: the views that use it set
nothing personal in them (no CSRF token, no buyer's name; the account link is the same for
all), and a request carrying a buyer's cookie is answered the same. One process renders a
stale page once; the requests arriving meanwhile wait for it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_AGE = 1.0
MAX_ENTRIES = 2048


@dataclass(frozen=True)
class Kept:
    body: bytes
    status: int
    etag: str
    until: float


class PageCache:
    def __init__(self, max_age: float = MAX_AGE, clock: Callable[[], float] = time.monotonic):
        self.max_age, self.clock = max_age, clock
        self._kept: dict[str, Kept] = {}
        self._rendering: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: str, render: Callable[[], tuple[str, int]]) -> Kept:
        """The page at ``key``: kept, or rendered now by ``render`` (its HTML and status)."""
        found = self._kept.get(key)
        if found is not None and self.clock() < found.until:
            return found
        with self._lock:
            rendering = self._rendering.setdefault(key, threading.Lock())
        with rendering:
            found = self._kept.get(key)
            if found is not None and self.clock() < found.until:
                return found
            html, status = render()
            body = html.encode("utf-8")
            made = Kept(body, status, hashlib.sha256(body).hexdigest()[:32],
                        self.clock() + self.max_age)
            with self._lock:
                if len(self._kept) >= MAX_ENTRIES:
                    self._kept.clear()
                    self._rendering = {key: rendering}
                self._kept[key] = made
            return made
