"""Keyboard-wedge barcode scanners: a USB scanner that types what it reads. The appliance
reads its key events from /dev/input/eventN with evdev and *grabs* the device, so the keys
never reach a console or kiosk; Enter ends a scan.

The pure part is :class:`KeyDecoder`: key events in (anything with ``type``, ``code``,
``value``, ``sec``, ``usec``, such as ``evdev.InputEvent``), text out, with the US layout and
both shift keys and caps lock. A pause longer than ``max_gap_ms`` between two keys of one
scan discards the part typed so far (a scanner types a code in a few milliseconds, so a slow
stream is not a scan), as does a scan longer than ``max_length``. :func:`parse_events` turns
the kernel's ``struct input_event`` records into events.
"""

from __future__ import annotations

import collections
import errno
import os
import select
import struct
import time
from dataclasses import dataclass

import evdev
from evdev import ecodes as e

from drivers.base import Health, PermanentError, Scan, ScanKind
from drivers.health import HealthTracker

EVENT = struct.Struct("llHHi")  # struct input_event on 64-bit Linux: timeval, type, code, value
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2


def _keymap() -> dict[int, tuple[str, str]]:
    keys: dict[int, tuple[str, str]] = {}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        keys[getattr(e, f"KEY_{ch.upper()}")] = (ch, ch.upper())
    for digit, shifted in zip("1234567890", "!@#$%^&*()", strict=True):
        keys[getattr(e, f"KEY_{digit}")] = (digit, shifted)
    for name, plain, shifted in [
        ("MINUS", "-", "_"), ("EQUAL", "=", "+"), ("LEFTBRACE", "[", "{"),
        ("RIGHTBRACE", "]", "}"), ("BACKSLASH", "\\", "|"), ("SEMICOLON", ";", ":"),
        ("APOSTROPHE", "'", '"'), ("GRAVE", "`", "~"), ("COMMA", ",", "<"),
        ("DOT", ".", ">"), ("SLASH", "/", "?"), ("SPACE", " ", " "),
        ("KPSLASH", "/", "/"), ("KPASTERISK", "*", "*"), ("KPMINUS", "-", "-"),
        ("KPPLUS", "+", "+"), ("KPDOT", ".", "."),
    ]:
        keys[getattr(e, f"KEY_{name}")] = (plain, shifted)
    for digit in "0123456789":
        keys[getattr(e, f"KEY_KP{digit}")] = (digit, digit)
    return keys


KEYMAP = _keymap()
SHIFTS = {e.KEY_LEFTSHIFT, e.KEY_RIGHTSHIFT}
ENTERS = {e.KEY_ENTER, e.KEY_KPENTER}


@dataclass(frozen=True)
class RawEvent:
    sec: int
    usec: int
    type: int
    code: int
    value: int


def parse_events(data: bytes) -> tuple[list[RawEvent], bytes]:
    """Whole ``input_event`` records, and the bytes of an incomplete one."""
    whole = len(data) - len(data) % EVENT.size
    return [RawEvent(*fields) for fields in EVENT.iter_unpack(data[:whole])], data[whole:]


def pack_event(sec: int, usec: int, type_: int, code: int, value: int) -> bytes:
    return EVENT.pack(sec, usec, type_, code, value)


class KeyDecoder:
    def __init__(self, max_gap_ms: int = 200, max_length: int = 512):
        self.max_gap_s = max_gap_ms / 1000
        self.max_length = max_length
        self.discarded = collections.Counter()
        self._text: list[str] = []
        self._shift: set[int] = set()
        self._caps = False
        self._last_key: float | None = None
        self._overlong = False

    def feed(self, event) -> str | None:
        """The finished scan when ``event`` is the Enter that ends one, else None."""
        if event.type != e.EV_KEY:
            return None
        if event.code in SHIFTS:
            (self._shift.add if event.value != KEY_UP else self._shift.discard)(event.code)
            return None
        if event.value != KEY_DOWN:
            return None  # releases, and auto-repeat (a scanner never holds a key)
        at = event.sec + event.usec / 1_000_000
        if self._text and self._last_key is not None and at - self._last_key > self.max_gap_s:
            self._discard("slow")
        self._last_key = at
        if event.code == e.KEY_CAPSLOCK:
            self._caps = not self._caps
            return None
        if event.code in ENTERS:
            text, overlong = "".join(self._text), self._overlong
            self._text, self._overlong = [], False
            if overlong:
                self.discarded["overlong"] += 1
                return None
            return text or None
        key = KEYMAP.get(event.code)
        if key is None:
            self.discarded["unmapped_keys"] += 1
            return None
        shifted = bool(self._shift)
        if key[0].isalpha() and self._caps:
            shifted = not shifted
        if len(self._text) >= self.max_length:
            self._overlong = True
            self._text = []
        if not self._overlong:
            self._text.append(key[1] if shifted else key[0])
        return None

    def _discard(self, why: str) -> None:
        self.discarded[why] += 1
        self._text, self._overlong = [], False


class WedgeScanner:
    """Config: ``path`` (/dev/input/by-id/…-event-kbd), ``grab`` (True), ``max_gap_ms``
    (200), ``max_length`` (512)."""

    def __init__(self, device_id: str, path: str, grab: bool = True, max_gap_ms: int = 200,
                 max_length: int = 512):
        self.device_id = device_id
        self.path = path
        self.grab = grab
        self._settings = (max_gap_ms, max_length)
        self._device: evdev.InputDevice | None = None
        self._fd = -1
        self._owns_fd = False
        self._rest = b""
        self._decoder = KeyDecoder(*self._settings)
        self._scans: collections.deque[str] = collections.deque()
        self._health = HealthTracker()

    @classmethod
    def over_fd(cls, device_id: str, fd: int, **settings) -> WedgeScanner:
        """A scanner reading ``input_event`` records from an open descriptor (a pipe, a
        recorded stream) instead of an input device: for replays and tests."""
        scanner = cls(device_id, f"fd:{fd}", grab=False, **settings)
        scanner._fd = fd
        scanner._health.opened()
        return scanner

    def open(self) -> None:
        if self._fd >= 0:
            return
        try:
            device = evdev.InputDevice(self.path)
        except FileNotFoundError as exc:
            raise self._down(f"no input device at {self.path}") from exc
        except PermissionError as exc:
            raise self._down(f"no permission to read {self.path} (a udev rule giving the "
                             "appliance's user the input group?)") from exc
        except OSError as exc:
            raise self._down(f"{self.path} is not an input device: {exc}") from exc
        if self.grab:
            try:
                device.grab()
            except OSError as exc:
                device.close()
                raise self._down(f"cannot grab {self.path}: "
                                 f"{'another process holds it' if exc.errno == errno.EBUSY else exc}"
                                 ) from exc
        self._device, self._fd, self._owns_fd = device, device.fd, True
        self._rest, self._decoder = b"", KeyDecoder(*self._settings)
        self._health.opened()

    def close(self) -> None:
        """Releases the grab and closes the device; a half-typed scan is dropped."""
        device, self._device = self._device, None
        if device is not None:
            try:
                device.close()  # also releases the grab
            except OSError:
                self._health.count("close_errors")
        self._fd = -1
        self._scans.clear()
        self._health.down("closed")

    def health(self) -> Health:
        return self._health.snapshot(**{f"discarded_{k}": v
                                        for k, v in self._decoder.discarded.items()})

    def read(self, timeout: float) -> Scan | None:
        deadline = time.monotonic() + max(timeout, 0)
        while not self._scans:
            if self._fd < 0:
                raise PermanentError("scanner device is not open", self.device_id)
            try:
                ready, _, _ = select.select([self._fd], [], [],
                                            max(deadline - time.monotonic(), 0))
                data = os.read(self._fd, EVENT.size * 64) if ready else None
            except OSError as exc:  # ENODEV: the scanner was unplugged
                self._lost()
                raise self._down(f"scanner device failed: {exc}") from exc
            if data == b"":
                self._lost()
                raise self._down("scanner device is gone")
            if data:
                events, self._rest = parse_events(self._rest + data)
                for event in events:
                    text = self._decoder.feed(event)
                    if text:
                        self._scans.append(text)
            if not self._scans and time.monotonic() >= deadline:
                return None
        self._health.ok()
        self._health.count("scans")
        return Scan(ScanKind.BARCODE, self._scans.popleft(), self.device_id)

    def _lost(self) -> None:
        if self._device is not None:
            self.close()
        self._fd = -1

    def _down(self, detail: str) -> PermanentError:
        self._health.down(detail)
        return PermanentError(detail, self.device_id)
