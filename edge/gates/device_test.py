"""The test of one device that an admin asks for on the Devices page, as the gate runtime
carries it out (a ``test`` command, see :mod:`edge.commands`).

A turnstile is pulsed open for one passage and reports whether someone passed; a camera takes
one snapshot, decoded, with the codes found outlined; a reader reports the next thing it reads
(a code, a card's UID, an ID card masked). While its test is under way a device reports to
the test, not to its lane; a test that hears nothing within :data:`TEST_TIMEOUT_S` is done
with ``ok`` false. One test per device at a time.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from drivers.base import Direction, Scan, TurnstileEvent, TurnstileEventKind
from edge import commands
from edge import db as db_mod
from edge.gates.devices import TURNSTILE_KIND, DeviceWorker, UnlockRequest
from sync.identity import mask_document

TEST_TIMEOUT_S = 20.0


class DeviceTests:
    """The tests under way, by device: ``(command id, monotonic deadline, action)``.

    :meth:`start` and :meth:`expire` run on the supervisor's thread and write through its
    connection; a result arrives on a device's thread (:meth:`report`, a driver's callback)
    and is written through a short connection of its own."""

    def __init__(self, db_path: str | Path, timeout_s: float = TEST_TIMEOUT_S):
        self.db_path = db_path
        self.timeout_s = timeout_s
        self._tests: dict[str, tuple[int, float, str]] = {}
        self._lock = threading.Lock()

    def start(self, conn, item: dict, worker: DeviceWorker | None) -> None:
        """Begin the test ``item`` (a command :func:`edge.commands.take` handed out) on the
        device's ``worker``; failed at once when the device is not up."""
        if worker is None or not worker.usable:
            commands.finish(conn, item["id"], "failed",
                            {"ok": False, "message": "the device is not up"})
            return
        action = item["args"].get("action", "")
        if worker.row.kind == "qr_camera" and action == "snapshot":
            worker.call(lambda driver: driver.snapshot(),
                        lambda result, error, cid=item["id"]: self._snapshot_done(cid, result,
                                                                                  error))
            return
        with self._lock:
            self._tests[worker.row.id] = (item["id"], time.monotonic() + self.timeout_s,
                                          action)
        if worker.row.kind == TURNSTILE_KIND:
            worker.unlock(UnlockRequest(Direction.A, f"test:{item['id']}", self._unlocked))

    def report(self, device_id: str, scan: Scan | None = None,
               events: list[TurnstileEvent] | None = None) -> bool:
        """A device under test reports to its test, not to its lane: True when this scan or
        these events were the test's (and finished it)."""
        with self._lock:
            test = self._tests.get(device_id)
            if test is None:
                return False
            if events is not None and not any(e.kind in (TurnstileEventKind.PASSED,
                                                        TurnstileEventKind.TIMEOUT)
                                              for e in events):
                return False
            del self._tests[device_id]
        self._finish_later(test[0], "done", _result(scan, events))
        return True

    def expire(self, conn) -> None:
        """Finish the tests that heard nothing in time."""
        now = time.monotonic()
        with self._lock:
            expired = [(d, t) for d, t in self._tests.items() if t[1] <= now]
            for device_id, _ in expired:
                del self._tests[device_id]
        for _, (cid, _, _) in expired:
            commands.finish(conn, cid, "done", {"ok": False, "message":
                                                f"nothing within {self.timeout_s:g} s"})

    def _snapshot_done(self, cid: int, result, error: str | None) -> None:
        if error is not None:
            self._finish_later(cid, "failed", {"ok": False, "message": error})
            return
        import base64

        import cv2

        picture, codes = result
        ok, png = cv2.imencode(".png", picture)
        if not ok:
            self._finish_later(cid, "failed", {"ok": False, "message": "cannot encode PNG"})
            return
        self._finish_later(cid, "done", {"ok": True, "message": f"{len(codes)} code(s)",
                                         "codes": codes,
                                         "snapshot_png": base64.b64encode(png).decode()})

    def _unlocked(self, token: str, error: str | None, has_feedback: bool) -> None:
        """A turnstile's pulse is done: without passage feedback that is the test's result;
        with it, the test waits for the passage (or its timeout) in :meth:`report`."""
        cid = int(token.split(":", 1)[1])
        with self._lock:
            device = next((d for d, t in self._tests.items() if t[0] == cid), None)
            if device is None or (error is None and has_feedback):
                return
            del self._tests[device]
        ok = error is None
        self._finish_later(cid, "done" if ok else "failed",
                           {"ok": ok, "message": error or "pulsed (no passage input to report)"})

    def _finish_later(self, cid: int, status: str, result: dict) -> None:
        """From a device's thread: its own short connection (the supervisor's is not shared)."""
        conn = db_mod.connect(self.db_path)
        try:
            commands.finish(conn, cid, status, result)
        finally:
            conn.close()


def _result(scan: Scan | None, events: list[TurnstileEvent] | None) -> dict[str, Any]:
    """What a reader read (an ID card masked), or whether someone passed the turnstile."""
    if scan is not None:
        result: dict[str, Any] = {"ok": True, "message": "read"}
        if scan.kind.value == "id_card":
            result["document"] = mask_document(scan.data)
        elif scan.kind.value == "rfid":
            result["uid"] = scan.data
        else:
            result["scan"] = scan.data
        return result
    passed = TurnstileEventKind.PASSED in {e.kind for e in events or []}
    return {"ok": passed, "message": "opened; a passage was reported" if passed
            else "opened; nobody passed"}
