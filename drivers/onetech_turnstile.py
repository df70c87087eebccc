"""One-Tech 2B-ATT203 tripod turnstile, driven over its RS-485 port.

Protocol (2B-ATT203 manual, "Order and Agreement", p. 14): every frame is seven bytes,
``FE <code> <direction> 00 00 00 AB``; direction 01 is A, 02 is B.

==========================  ===========================  ====================
host → gate                 ``FE 80 01 00 00 00 AB``     open A for one person
                            ``FE 80 02 00 00 00 AB``     open B
gate → host                 ``FE 81 01 00 00 00 AB``     the person passed (A)
                            ``FE 44 01 00 00 00 AB``     not passed: the gate's own time ran
                                                         out, or the arm was pushed backwards;
                                                         the gate re-locks by itself
==========================  ===========================  ====================

The gate times the opening itself (the lane's passage time is set on the gate), so a crashed
appliance never leaves the lane open. The frame has no checksum: integrity rests on the fixed
start and end bytes, the fixed length, the zero padding and the closed set of codes, and the
parser checks all of them. The manual mentions a busy/idle status query but our sources do not
give its frame, and the protocol has no alarm message; so this driver has no status poll and
reports no alarms (wire the gate's alarm contact to a Modbus input board if it matters).

Link supervision comes from the protocol itself: the gate answers every open with 81 or 44.
No answer within ``answer_timeout_s`` is reported as TIMEOUT (nobody is known to have passed,
so the ticket stays unused) and counts as a failed exchange; ``down_after`` of those in a row
raise :class:`PermanentError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from drivers.base import (
    Direction,
    Health,
    PermanentError,
    TemporaryError,
    TurnstileEvent,
    TurnstileEventKind,
)
from drivers.health import HealthTracker
from drivers.protocol import FrameError
from drivers.serial_link import SerialLink
from drivers.settings import BAUD_RATES, Field

START, END, FRAME_LEN = 0xFE, 0xAB, 7
OPEN, PASSED, NOT_PASSED = 0x80, 0x81, 0x44
CODES = {OPEN: "open", PASSED: "passed", NOT_PASSED: "not_passed"}
DIRECTIONS = {0x01: Direction.A, 0x02: Direction.B}


@dataclass(frozen=True)
class Message:
    code: str  # "open", "passed", "not_passed"
    direction: Direction


def encode(code: int, direction: Direction) -> bytes:
    number = 0x01 if direction is Direction.A else 0x02
    return bytes([START, code, number, 0, 0, 0, END])


def encode_open(direction: Direction) -> bytes:
    return encode(OPEN, direction)


def decode(frame: bytes) -> Message:
    if len(frame) != FRAME_LEN:
        raise FrameError(f"turnstile frame is {len(frame)} bytes, not 7")
    if frame[0] != START or frame[-1] != END:
        raise FrameError(f"turnstile frame is not framed by fe … ab: {frame.hex(' ')}")
    if frame[1] not in CODES:
        raise FrameError(f"unknown turnstile code {frame[1]:02x}")
    if frame[2] not in DIRECTIONS:
        raise FrameError(f"unknown turnstile direction {frame[2]:02x}")
    if frame[3:6] != b"\0\0\0":
        raise FrameError("turnstile frame padding is not zero")
    return Message(CODES[frame[1]], DIRECTIONS[frame[2]])


def split(buffer: bytes) -> tuple[list[bytes], int, bytes]:
    """(candidate frames, bytes of garbage skipped, incomplete rest). A start byte whose
    seventh byte is not the end byte is garbage; the search resumes one byte later."""
    frames, garbage, i = [], 0, 0
    while True:
        start = buffer.find(bytes([START]), i)
        if start < 0:
            return frames, garbage + len(buffer) - i, b""
        garbage += start - i
        if len(buffer) - start < FRAME_LEN:
            return frames, garbage, buffer[start:]
        if buffer[start + FRAME_LEN - 1] != END:
            garbage += 1
            i = start + 1
            continue
        frames.append(buffer[start:start + FRAME_LEN])
        i = start + FRAME_LEN


class OneTechTurnstile:
    """Config: ``port``, ``baudrate`` (9600), ``answer_timeout_s`` (15.0: longer than the
    passage time set on the gate), ``down_after`` (3 unanswered opens in a row)."""

    has_feedback = True
    # the Devices page's form (drivers.settings.from_form); the port is the page's own field
    FORM = {
        "baudrate": Field("Baud rate", "The gate's RS-485 speed, as set on its controller.",
                          choices=BAUD_RATES),
        "answer_timeout_s": Field("Answer timeout (s)", "How long to wait for the gate's "
                                  "passed or not-passed answer after an open: longer than "
                                  "the passage time set on the gate.", minimum=1, maximum=120),
        "down_after": Field("Down after", "Opens in a row without an answer before the gate "
                            "is reported down.", minimum=1, maximum=100),
    }

    def __init__(self, device_id: str, port: str, baudrate: int = 9600,
                 answer_timeout_s: float = 15.0, down_after: int = 3):
        self.device_id = device_id
        self.answer_timeout_s = answer_timeout_s
        self._link = SerialLink(port, baudrate, device_id)
        self._health = HealthTracker(down_after)
        self._buffer = b""
        self._pending: dict[Direction, float] = {}
        self._orphaned: list[TurnstileEvent] = []

    def open(self) -> None:
        if self._link.is_open:
            return
        try:
            self._link.open()
        except PermanentError as exc:
            self._health.down(str(exc))
            raise
        self._buffer = b""
        self._health.opened()

    def close(self) -> None:
        """Opens still waiting for the gate's answer are reported as TIMEOUT by the first
        poll after reopening."""
        self._orphaned += [TurnstileEvent(TurnstileEventKind.TIMEOUT, d) for d in self._pending]
        self._pending.clear()
        self._link.close()
        self._health.down("closed")

    def unlock(self, direction: Direction) -> None:
        self._guard(lambda: self._link.write(encode_open(direction)))
        self._pending[direction] = time.monotonic() + self.answer_timeout_s
        self._health.count("unlocks")

    def poll(self, timeout: float) -> list[TurnstileEvent]:
        deadline = time.monotonic() + max(timeout, 0)
        events: list[TurnstileEvent] = []
        while True:
            if not self._link.is_open:
                raise PermanentError("turnstile port is not open", self.device_id)
            wait = 0.0 if self._orphaned else \
                max(min([deadline, *self._pending.values()]) - time.monotonic(), 0)
            data = self._guard(lambda wait=wait: self._link.read(wait))
            # Parsed events are kept across a failure below, like orphaned timeouts.
            self._orphaned += self._take(data)
            self._orphaned += self._expired()
            events, self._orphaned = events + self._orphaned, []
            if events or time.monotonic() >= deadline:
                return events

    def health(self) -> Health:
        return self._health.snapshot(waiting_for_passage=len(self._pending))

    def _take(self, data: bytes) -> list[TurnstileEvent]:
        frames, garbage, self._buffer = split(self._buffer + data)
        messages, bad = [], garbage > 0
        for frame in frames:
            try:
                messages.append(decode(frame))
            except FrameError:
                bad = True
        if bad:  # counted first: garbage mostly precedes the frame that resynchronises
            self._health.failed("garbled", "garbled frame from the turnstile")
        events = []
        for message in messages:
            if message.code == "open":  # our own frame echoed by a two-wire adapter
                continue
            kind = TurnstileEventKind.PASSED if message.code == "passed" else \
                TurnstileEventKind.TIMEOUT
            self._pending.pop(message.direction, None)
            events.append(TurnstileEvent(kind, message.direction))
            self._health.ok()
        if bad and not events:
            raise TemporaryError("garbled frame from the turnstile", self.device_id)
        return events

    def _expired(self) -> list[TurnstileEvent]:
        now, events = time.monotonic(), []
        for direction, due in list(self._pending.items()):
            if now >= due:
                del self._pending[direction]
                events.append(TurnstileEvent(TurnstileEventKind.TIMEOUT, direction))
                detail = f"no answer to open {direction} within {self.answer_timeout_s:g} s"
                if self._health.failed("no_answer", detail):
                    self._orphaned += events
                    self._lost(detail)
                    raise PermanentError(f"turnstile not answering: {detail}",
                                         self.device_id)
        return events

    def _guard(self, action):
        try:
            return action()
        except PermanentError as exc:
            self._lost(str(exc))
            raise

    def _lost(self, detail: str) -> None:
        self.close()
        self._health.down(detail)
