"""Barcode scanners that present themselves as a serial port (USB CDC-ACM /dev/ttyACM*, or a
real RS-232 port): each scan is one line of text ended by CR, LF or CR LF.

The pure part is :class:`LineSplitter`: bytes in any chunking, lines out. A line longer than
``max_line`` is discarded up to its terminator (a scanner with no terminator configured, or a
stuck one); a line that is not UTF-8 or carries control characters is garbage (line noise, a
wrong baud rate). Both are reported as :class:`LineError` and never become a scan.
"""

from __future__ import annotations

import collections
import time
import unicodedata
from dataclasses import dataclass

from drivers.base import Health, PermanentError, Scan, ScanKind, TemporaryError
from drivers.health import HealthTracker
from drivers.serial_link import SerialLink

CR, LF = 0x0D, 0x0A


@dataclass(frozen=True)
class LineError:
    kind: str  # "overlong" or "garbage"
    detail: str


class LineSplitter:
    def __init__(self, max_line: int = 512):
        self.max_line = max_line
        self._line = bytearray()
        self._overlong = False
        self._after_cr = False

    def feed(self, data: bytes) -> list[str | LineError]:
        out: list[str | LineError] = []
        for byte in data:
            if byte == LF and self._after_cr:
                self._after_cr = False
                continue  # the LF of a CR LF
            self._after_cr = byte == CR
            if byte in (CR, LF):
                result = self._end()
                if result is not None:
                    out.append(result)
            elif self._overlong:
                continue
            elif len(self._line) >= self.max_line:
                self._overlong = True
                self._line.clear()
            else:
                self._line.append(byte)
        return out

    def _end(self) -> str | LineError | None:
        raw, overlong = bytes(self._line), self._overlong
        self._line.clear()
        self._overlong = False
        if overlong:
            return LineError("overlong", f"line longer than {self.max_line} bytes")
        raw = raw.strip(b" \t\0")
        if not raw:
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return LineError("garbage", f"{len(raw)} bytes that are not UTF-8")
        if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
            return LineError("garbage", f"{len(raw)} bytes with control characters")
        return text


class SerialScanner:
    """Config: ``port``, ``baudrate`` (9600; a CDC-ACM scanner ignores it), ``max_line``
    (512)."""

    def __init__(self, device_id: str, port: str, baudrate: int = 9600, max_line: int = 512):
        self.device_id = device_id
        self._link = SerialLink(port, baudrate, device_id)
        self._max_line = max_line
        self._splitter = LineSplitter(max_line)
        self._lines: collections.deque[str] = collections.deque()
        self._health = HealthTracker(down_after=1 << 30)  # noise degrades, never downs

    def open(self) -> None:
        if self._link.is_open:
            return
        try:
            self._link.open()
        except PermanentError as exc:
            self._health.down(str(exc))
            raise
        self._splitter = LineSplitter(self._max_line)
        self._health.opened()

    def close(self) -> None:
        """Closes the port; a half-received line is dropped with it."""
        self._link.close()
        self._lines.clear()
        self._health.down("closed")

    def health(self) -> Health:
        return self._health.snapshot()

    def read(self, timeout: float) -> Scan | None:
        deadline = time.monotonic() + max(timeout, 0)
        while not self._lines:
            if not self._link.is_open:
                raise PermanentError("scanner port is not open", self.device_id)
            try:
                data = self._link.read(max(deadline - time.monotonic(), 0))
            except PermanentError as exc:
                self._health.down(str(exc))
                raise
            errors = []
            for item in self._splitter.feed(data):
                if isinstance(item, LineError):
                    errors.append(item)
                    self._health.failed(item.kind, item.detail)
                else:
                    self._lines.append(item)
                    self._health.ok()
            if errors and not self._lines:
                raise TemporaryError(errors[-1].detail, self.device_id)
            if not self._lines and time.monotonic() >= deadline:
                return None
        self._health.count("scans")
        return Scan(ScanKind.BARCODE, self._lines.popleft(), self.device_id)
