"""One lane: scans in, the engine's decision, the turnstile out, the passage back.

The lane's thread owns an Engine on its own connection. For each scan it asks the engine;
on ``OK`` it unlocks the lane's turnstile and waits for that lane's passage input:

- a passage in the lane's direction confirms the entry (``passed``);
- the turnstile's own "not passed", or no passage within the lane's ``passage_timeout_s``,
  annuls it (``timeout``: the ticket stays unused); an unlock that fails annuls it too;
- a turnstile without a passage input counts the opening (``no_sensor``).

While the lane is open, a re-scan of the code it opened for is ignored, and other scans
wait their turn (each once). Real-name lanes (gate mode ``ticket_and_id``) pair a ticket with
an ID card read within ``realname_window_s`` of it, in either order; at ``id_only`` gates an
ID card alone finds the holder's ticket. Manual "open lane" commands take the same path.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drivers.base import Direction, TurnstileEvent, TurnstileEventKind
from drivers.base import Scan as DriverScan
from drivers.base import ScanKind as DriverKind
from edge import audit, commands, passages
from edge import db as db_mod
from edge.engine import Decision, Engine, IdDocument, Scan, ScanKind, UnknownLane
from edge.gates.devices import DeviceWorker, UnlockRequest
from edge.holders import HolderVault
from edge.reasons import Reason
from sync.timeutil import utcnow

log = logging.getLogger(__name__)

_KINDS = {DriverKind.QR: ScanKind.QR, DriverKind.BARCODE: ScanKind.QR,
          DriverKind.RFID: ScanKind.RFID, DriverKind.ID_CARD: ScanKind.ID_CARD}


@dataclass(frozen=True)
class LaneConfig:
    id: int
    code: str
    direction: str           # 'in' or 'out'
    passage_timeout_s: float
    enabled: bool
    realname_mode: str       # the gate's: 'ticket', 'ticket_and_id', 'id_only'

    @property
    def turnstile_direction(self) -> Direction:
        return Direction.A if self.direction == "in" else Direction.B


def document_of(scan: DriverScan) -> IdDocument:
    """An ID-card reader's scan as the engine's document (a resident ID card: 二代证)."""
    name = scan.fields.get("name", "") if scan.fields else ""
    return IdDocument(str(scan.fields.get("doc_type", "resident_id")) if scan.fields
                      else "resident_id", scan.data, str(name or ""))


def engine_scan(scan: DriverScan, document: IdDocument | None = None) -> Scan:
    kind = _KINDS[scan.kind]
    if kind is ScanKind.ID_CARD:
        return Scan(kind, "", device_id=scan.device_id, document=document_of(scan))
    return Scan(kind, scan.data, device_id=scan.device_id, document=document)


@dataclass
class _Opening:
    token: str
    entry_id: str | None
    ref: str | None             # the code it opened for: a re-scan of it is ignored
    direction: Direction
    deadline: float
    command_id: int | None = None
    unlocked: bool = False


class LaneWorker(threading.Thread):
    def __init__(self, config: LaneConfig, db_path: str | Path, vault: HolderVault,
                 turnstile: Callable[[], DeviceWorker | None], realname_window_s: float = 20.0,
                 on_decision: Callable[[Decision], None] | None = None):
        super().__init__(name=f"lane {config.code}", daemon=True)
        self.config = config
        self.db_path = db_path
        self.vault = vault
        self.turnstile = turnstile
        self.realname_window_s = realname_window_s
        self.on_decision = on_decision
        self.inbox: queue.Queue[tuple] = queue.Queue()
        self.heartbeat = time.monotonic()
        self.decisions = 0
        self._halt = threading.Event()
        self._opening: _Opening | None = None
        self._waiting: deque[tuple] = deque()
        self._pending_ticket: tuple[DriverScan, float] | None = None
        self._pending_doc: tuple[DriverScan, float] | None = None
        self.conn = None
        self.engine: Engine | None = None

    # called from other threads ---------------------------------------------------------------

    def post_scan(self, scan: DriverScan) -> None:
        self.inbox.put(("scan", scan))

    def post_events(self, device_id: str, events: list[TurnstileEvent]) -> None:
        self.inbox.put(("events", device_id, events))

    def post_command(self, command: dict) -> None:
        self.inbox.put(("command", command))

    def reconfigure(self, config: LaneConfig) -> None:
        self.inbox.put(("config", config))

    def stop(self) -> None:
        self._halt.set()
        self.inbox.put(("stop",))

    # the thread ------------------------------------------------------------------------------

    def run(self) -> None:
        self.conn = db_mod.connect(self.db_path)
        self.engine = Engine(self.conn, self.vault)
        try:
            while not self._halt.is_set():
                self.heartbeat = time.monotonic()
                try:
                    message = self.inbox.get(timeout=self._wait())
                except queue.Empty:
                    message = None
                try:
                    if message is not None:
                        self._handle(message)
                    self._timers()
                except Exception:  # noqa: BLE001 - one bad message must not stop the lane
                    log.exception("lane %s: error handling %s", self.config.code,
                                  message[0] if message else "timers")
        finally:
            self.conn.close()

    def _wait(self) -> float:
        deadlines = [d for d in (self._opening.deadline if self._opening else None,
                                 self._pending_ticket[1] if self._pending_ticket else None,
                                 self._pending_doc[1] if self._pending_doc else None) if d]
        if not deadlines:
            return 0.2
        return max(0.0, min(0.2, min(deadlines) - time.monotonic()))

    def _handle(self, message: tuple) -> None:
        kind = message[0]
        if kind == "scan":
            self._scan(message[1])
        elif kind == "events":
            self._events(message[1], message[2])
        elif kind == "unlocked":
            self._unlocked(message[1], message[2], message[3])
        elif kind == "command":
            self._command(message[1])
        elif kind == "config":
            self.config = message[1]

    # scans -------------------------------------------------------------------------------------

    def _scan(self, scan: DriverScan) -> None:
        opening = self._opening
        if opening is not None:
            if opening.ref is not None and scan.data == opening.ref:
                log.debug("lane %s: re-scan ignored while the lane is open", self.config.code)
                return
            if not any(w[0] == "scan" and w[1].data == scan.data for w in self._waiting):
                self._waiting.append(("scan", scan))
            return
        now = time.monotonic()
        mode = self.config.realname_mode
        if scan.kind is DriverKind.ID_CARD and mode == "ticket_and_id":
            if self._pending_ticket is not None and self._pending_ticket[1] > now:
                ticket, _ = self._pending_ticket
                self._pending_ticket = None
                self._decide(ticket, document_of(scan))
            else:
                self._pending_doc = (scan, now + self.realname_window_s)
            return
        document = None
        if mode == "ticket_and_id" and scan.kind is not DriverKind.ID_CARD \
                and self._pending_doc is not None and self._pending_doc[1] > now:
            document = document_of(self._pending_doc[0])
            self._pending_doc = None
        decision = self._decide(scan, document)
        if decision is not None and decision.reason is Reason.REALNAME_REQUIRED \
                and mode == "ticket_and_id":
            self._pending_ticket = (scan, now + self.realname_window_s)

    def _decide(self, scan: DriverScan, document: IdDocument | None) -> Decision | None:
        turnstile = self.turnstile()
        try:
            decision = self.engine.decide(engine_scan(scan, document), self.config.code,
                                          passage=turnstile is not None)
        except UnknownLane as e:  # removed or disabled since this thread was told
            log.warning("lane %s: scan from %s not decided: %s", self.config.code,
                        scan.device_id, e)
            return None
        self.decisions += 1
        ticket = decision.ticket.id if decision.ticket else None
        log.info("lane %s: %s scan from %s: %s (ticket %s)", self.config.code, scan.kind.value,
                 scan.device_id, decision.reason.value, ticket)
        if self.on_decision is not None:
            self.on_decision(decision)
        if decision.open_lane and turnstile is not None:
            self._open(decision.entry_id, decision.entry_id, scan.data, turnstile)
        return decision

    # opening the lane ----------------------------------------------------------------------

    def _open(self, token: str, entry_id: str | None, ref: str | None,
              turnstile: DeviceWorker, command_id: int | None = None) -> None:
        direction = self.config.turnstile_direction
        self._opening = _Opening(token, entry_id, ref, direction,
                                 time.monotonic() + self.config.passage_timeout_s, command_id)
        turnstile.unlock(UnlockRequest(direction, token, self._unlock_done))

    def _unlock_done(self, token: str, error: str | None, has_feedback: bool) -> None:
        self.inbox.put(("unlocked", token, error, has_feedback))

    def _unlocked(self, token: str, error: str | None, has_feedback: bool) -> None:
        opening = self._opening
        if opening is None or opening.token != token:
            return
        if error is not None:
            log.warning("lane %s: the turnstile did not open: %s", self.config.code, error)
            self._settle(passages.FAILED, f"lane not opened: {error}")
            return
        opening.unlocked = True
        opening.deadline = time.monotonic() + self.config.passage_timeout_s
        if not has_feedback:
            self._settle(passages.NO_SENSOR, "")

    def _events(self, device_id: str, events: list[TurnstileEvent]) -> None:
        for event in events:
            if event.kind in (TurnstileEventKind.ALARM_ON, TurnstileEventKind.ALARM_OFF):
                log.warning("lane %s: turnstile %s: %s", self.config.code, device_id,
                            event.kind.value)
                audit.record(self.conn, f"device:{device_id}", f"lane.{event.kind.value}",
                             f"lane:{self.config.code}")
                continue
            opening = self._opening
            ours = opening is not None and opening.unlocked and \
                (event.direction is None or event.direction == opening.direction)
            if event.kind is TurnstileEventKind.PASSED:
                if ours:
                    self._settle(passages.PASSED, "")
                else:
                    log.warning("lane %s: a passage (%s) with no opening waiting for it",
                                self.config.code, event.direction)
                    audit.record(self.conn, f"device:{device_id}", "lane.unexpected_passage",
                                 f"lane:{self.config.code}",
                                 {"direction": str(event.direction)})
            elif event.kind is TurnstileEventKind.TIMEOUT and ours:
                self._settle(passages.TIMEOUT, "the turnstile reports nobody passed")

    def _timers(self) -> None:
        now = time.monotonic()
        if self._opening is not None and now >= self._opening.deadline:
            self._settle(passages.TIMEOUT,
                         f"no passage within {self.config.passage_timeout_s:g} s")
        if self._pending_ticket is not None and now >= self._pending_ticket[1]:
            self._pending_ticket = None
        if self._pending_doc is not None and now >= self._pending_doc[1]:
            self._pending_doc = None
        while self._opening is None and self._waiting:
            item = self._waiting.popleft()
            if item[0] == "scan":
                self._scan(item[1])
            else:
                self._command(item[1])

    def _settle(self, result: str, why: str) -> None:
        opening, self._opening = self._opening, None
        if opening is None:
            return
        now = utcnow()
        if opening.entry_id is not None:
            if result in (passages.PASSED, passages.NO_SENSOR):
                passages.confirm(self.conn, opening.entry_id, now, result)
            else:
                passages.annul(self.conn, opening.entry_id, now, result, why)
        log.info("lane %s: %s%s", self.config.code, result, f" ({why})" if why else "")
        if opening.command_id is not None:
            ok = result in (passages.PASSED, passages.NO_SENSOR)
            status = "failed" if result == passages.FAILED else "done"
            self._finish_command(opening.command_id, status,
                                 {"ok": ok, "passage": result, "message": why or result})

    # commands ----------------------------------------------------------------------------------

    def _command(self, command: dict) -> None:
        if self._opening is not None:
            self._waiting.append(("command", command))
            return
        turnstile = self.turnstile()
        if turnstile is None:
            self._finish_command(command["id"], "failed",
                                 {"ok": False, "message": "this lane has no turnstile"})
            return
        entry_id = command.get("args", {}).get("entry_id")
        if entry_id is not None and not passages.await_passage(self.conn, str(entry_id)):
            entry_id = None  # not an admission waiting to be let through: open all the same
        log.info("lane %s: opened by %s (command %s)", self.config.code, command.get("actor"),
                 command["id"])
        token = str(entry_id) if entry_id else f"command:{command['id']}"
        self._open(token, str(entry_id) if entry_id else None, None, turnstile, command["id"])

    def _finish_command(self, command_id: int, status: str, result: dict) -> None:
        commands.finish(self.conn, command_id, status, result)
