"""What every serial simulator shares: a pty pair whose far end it owns, a thread that reads
requests and fires timers, the fault switches, and unplugging.

Fault switches (plain attributes, safe to flip from another thread):

- ``drop``: the next N frames the device would send are lost on the line.
- ``silence``: the device sends nothing at all until switched back.
- ``garble``: every frame it sends is corrupted (its checksum no longer matches).
- ``delay``: seconds the device waits before each frame it sends.

``unplug()`` pulls the cable: the pty pair is closed, so the driver's next read or write
fails as a disconnected port does, and the port path disappears. ``replug()`` brings up a new
pair. Give the simulator a ``link`` path (like /dev/serial/by-id/…) and the driver keeps the
same port name across replugging; without one, ``port`` changes.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable

from drivers.base import PtyPair

log = logging.getLogger(__name__)


class SerialSim:
    """Subclasses implement :meth:`received` (bytes from the driver) and may override
    :meth:`corrupt` (how ``garble`` damages a frame)."""

    def __init__(self, link: str | None = None):
        self.link = link
        self.drop = 0
        self.silence = False
        self.garble = False
        self.delay = 0.0
        self.sent: list[bytes] = []  # every frame actually put on the line, for tests
        self._pair: PtyPair | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._timer_lock = threading.Lock()
        self._wake_r, self._wake_w = -1, -1

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> str:
        if self.link:
            return self.link
        if self._pair is None:
            raise RuntimeError("simulator not started")
        return self._pair.port

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._pair = PtyPair()
        if self.link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link)
            os.symlink(self._pair.port, self.link)
        self._wake_r, self._wake_w = os.pipe()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._wake()
        thread.join(timeout=10)
        if self.link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link)
        if self._pair is not None:
            self._pair.close()
            self._pair = None
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1
        with self._timer_lock:
            self._timers.clear()
        self.stopped()

    unplug = stop
    replug = start

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- for subclasses --------------------------------------------------------------------

    def received(self, data: bytes) -> None:
        """Bytes the driver wrote (any chunking). Runs in the simulator's thread."""

    def stopped(self) -> None:
        """Reset device state on unplug (a power cycle)."""

    def corrupt(self, frame: bytes) -> bytes:
        return frame[:-1] + bytes([frame[-1] ^ 0x5A]) if frame else frame

    def after(self, seconds: float, action: Callable[[], None]) -> None:
        """Run ``action`` in the simulator's thread ``seconds`` from now."""
        with self._timer_lock:
            heapq.heappush(self._timers, (time.monotonic() + seconds, next(self._timer_seq),
                                          action))
        self._wake()

    def send(self, frame: bytes) -> bool:
        """Put one frame on the line, through the fault switches; True if it went out."""
        if self.silence:
            return False
        if self.drop > 0:
            self.drop -= 1
            return False
        if self.delay > 0 and self._stop.wait(self.delay):
            return False
        if self.garble:
            frame = self.corrupt(frame)
        return self.send_raw(frame)

    def send_raw(self, data: bytes) -> bool:
        """Bytes straight onto the line, no fault switches (line noise, a half frame)."""
        with self._write_lock:
            pair = self._pair
            if pair is None or pair.fd < 0:
                return False
            try:
                os.write(pair.fd, data)
            except OSError as exc:
                log.debug("simulator write failed: %s", exc)
                return False
        self.sent.append(data)
        return True

    # --- the loop --------------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            if self._wake_w >= 0:
                os.write(self._wake_w, b"x")

    def _run(self) -> None:
        pair = self._pair
        assert pair is not None
        while not self._stop.is_set():
            timeout = self._due_timers()
            try:
                ready, _, _ = select.select([pair.fd, self._wake_r], [], [], timeout)
            except (OSError, ValueError):
                return
            if self._wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
            if pair.fd in ready:
                try:
                    data = os.read(pair.fd, 4096)
                except OSError:
                    data = b""  # the driver closed its end: wait for it to reopen
                if data:
                    self.received(data)
                else:
                    self._stop.wait(0.01)

    def _due_timers(self) -> float:
        while True:
            with self._timer_lock:
                if not self._timers:
                    return 0.5
                due, _, action = self._timers[0]
                now = time.monotonic()
                if due > now:
                    return due - now
                heapq.heappop(self._timers)
            action()
