"""Group commit: request threads of one process share the transactions that decide their scans.

Each durable commit of the appliance's database costs a disk flush. A request thread that
arrives while none is deciding becomes the leader and decides every scan waiting, in arrival
order, in one transaction (:meth:`edge.engine.Engine.decide_all`); the others wait for their
answers. Used by the handheld API (:mod:`edge.handhelds`), whose scans arrive concurrently.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Sequence

from edge.engine import Decision, Engine, GroupScan

log = logging.getLogger(__name__)


class GroupCommit:
    """Lets the request threads of one process share transactions: whoever arrives while no
    one is deciding becomes the leader and decides everything waiting, in arrival order, in
    one transaction and one durable commit (:meth:`Engine.decide_all`) with its own thread's
    engine; the others wait for their answers. A lone request is decided at once; under load
    the flush of one commit covers every scan that arrived during the previous one, so the
    disk's flush time stops being the limit of how many scans a second the API can take."""

    MAX_GROUP = 64

    def __init__(self, engine_of_this_thread: Callable[[], Engine],
                 lock_path: str | os.PathLike | None = None):
        """``lock_path`` names a file whose ``flock`` the leaders of all processes serving the
        API take around their transaction: they then queue in the kernel and each starts the
        moment the other commits, instead of polling SQLite's lock with growing sleeps."""
        self._engine = engine_of_this_thread
        self._cv = threading.Condition()
        self._pending: list[_Slot] = []
        self._leading = False
        self._lock_path = lock_path
        self._lock_fd: int | None = None

    def _flock(self) -> contextlib.AbstractContextManager:
        if self._lock_path is None:
            return contextlib.nullcontext()
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return _Flock(self._lock_fd)

    def decide(self, scans: Sequence[GroupScan]) -> list[Decision | Exception]:
        slots = [_Slot(item) for item in scans]
        if not slots:
            return []
        with self._cv:
            self._pending.extend(slots)
            while not slots[-1].done:
                if self._leading:
                    self._cv.wait()
                    continue
                self._leading = True
                group = self._pending[:self.MAX_GROUP]
                del self._pending[:self.MAX_GROUP]
                self._cv.release()
                try:
                    with self._flock():
                        _run(self._engine(), group)
                finally:
                    self._cv.acquire()
                    self._leading = False
                    self._cv.notify_all()
        return [slot.result for slot in slots]


class _Flock:
    def __init__(self, fd: int):
        self.fd = fd

    def __enter__(self):
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)


class _Slot:
    __slots__ = ("item", "result", "done")

    def __init__(self, item: GroupScan):
        self.item, self.result, self.done = item, None, False


def _run(engine: Engine, group: list[_Slot]) -> None:
    try:
        results = engine.decide_all([slot.item for slot in group])
    except Exception as e:  # a bug: every waiting request answers with it, none hangs
        log.exception("handheld scans: internal error while deciding a group")
        results = [e] * len(group)
    except BaseException as e:
        for slot in group:
            slot.result, slot.done = e, True
        raise
    for slot, result in zip(group, results, strict=True):
        slot.result, slot.done = result, True
