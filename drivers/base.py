"""What every driver shares: the scan a reader emits, the events a turnstile reports, device
states, health, and the two kinds of failure.

A driver owns one device and knows nothing of tickets. It is a transport (bytes in and out)
plus a protocol (pure functions from bytes to messages and back). The gate runtime gives each
device its own thread; a driver's methods are called from that thread only.

Failures come in two types, because the runtime treats them differently:

- :class:`TemporaryError` — this exchange failed (a garbled or truncated frame, a reply that
  did not come in time, a card pulled away mid-read). The device is still there; try again.
- :class:`PermanentError` — the device is gone or unusable as configured (the port vanished,
  the reader was unplugged, the stream ended). The runtime closes the driver, marks the device
  down once, and reconnects with backoff.
"""

from __future__ import annotations

import contextlib
import os
import pty
import termios
import tty
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


class DriverError(Exception):
    """A device failed; ``device_id`` says which, the message says what."""

    def __init__(self, message: str, device_id: str = ""):
        super().__init__(message)
        self.device_id = device_id


class TemporaryError(DriverError):
    """One exchange failed; the device is still there."""


class PermanentError(DriverError):
    """The device is gone or unusable as configured; close and reconnect."""


class DeviceState(StrEnum):
    UNKNOWN = "unknown"    # not opened yet
    UP = "up"              # open and answering
    DEGRADED = "degraded"  # open, but errors or slow answers (e.g. garbled frames)
    DOWN = "down"          # not reachable; the runtime is reconnecting
    DISABLED = "disabled"  # switched off in the configuration


class ScanKind(StrEnum):
    """The same values as the engine's scan kinds, plus the reader-specific ones it maps."""

    QR = "qr"            # a QR camera or a barcode scanner reading a QR code
    BARCODE = "barcode"  # a serial or keyboard-wedge scanner (the text it read)
    RFID = "rfid"        # a card UID, upper-case hex without separators
    ID_CARD = "id_card"  # an identity document read by an ID-card reader


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Scan:
    """What a reader saw, when. ``data`` is the code text, the UID or the document number.
    ``fields`` carries a document's other fields (name, birth, address, …) and the raw photo
    block; its repr never shows them, because scans get logged."""

    kind: ScanKind
    data: str = field(repr=False)
    device_id: str
    at: datetime = field(default_factory=utcnow)
    fields: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        shown = self.data if self.kind in (ScanKind.QR, ScanKind.BARCODE, ScanKind.RFID) \
            else f"<{len(self.data)} chars>"
        if len(shown) > 24:
            shown = shown[:12] + "…" + shown[-6:]
        return f"Scan({self.kind.value}, {shown!r}, device={self.device_id!r})"


class Direction(StrEnum):
    """A turnstile's two ways through: A is entry, B is exit, as wired on the board."""

    A = "A"
    B = "B"


class TurnstileEventKind(StrEnum):
    PASSED = "passed"        # a person went through (the passage input fired)
    TIMEOUT = "timeout"      # the lane was unlocked and nobody passed in time
    ALARM_ON = "alarm_on"    # the alarm input rose (forced entry, fire alarm)
    ALARM_OFF = "alarm_off"  # the alarm input fell


@dataclass(frozen=True)
class TurnstileEvent:
    kind: TurnstileEventKind
    direction: Direction | None = None
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Health:
    """A device's condition as the runtime writes it to the database for the admin pages."""

    state: DeviceState
    detail: str = ""
    metrics: Mapping[str, float | int | str | None] = field(default_factory=dict)


@runtime_checkable
class Reader(Protocol):
    """A device that produces scans: QR camera, RFID reader, ID-card reader, barcode scanner."""

    device_id: str

    def open(self) -> None: ...

    def read(self, timeout: float) -> Scan | None:
        """The next scan, or None when nothing came within ``timeout`` seconds. Raises
        TemporaryError or PermanentError."""

    def health(self) -> Health: ...

    def close(self) -> None: ...


@runtime_checkable
class Turnstile(Protocol):
    """A lane's actuator: unlocks for one person and reports what happened."""

    device_id: str
    has_feedback: bool  # False for a bare relay: no passage or alarm inputs

    def open(self) -> None: ...

    def unlock(self, direction: Direction) -> None:
        """Let one person through in ``direction``: a pulse the device times itself where it
        can, so a crashed appliance never leaves the lane open."""

    def poll(self, timeout: float) -> list[TurnstileEvent]:
        """Events since the last poll, waiting up to ``timeout`` seconds for the first."""

    def health(self) -> Health: ...

    def close(self) -> None: ...


class PtyPair:
    """A pseudo-terminal pair standing in for a serial cable: the driver opens ``port`` (a
    path like /dev/pts/7) as it would /dev/ttyUSB0; the simulator reads and writes the other
    end through ``fd``. Raw mode, so every byte passes unchanged."""

    def __init__(self) -> None:
        self.fd, slave = pty.openpty()
        tty.setraw(self.fd)
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self.port = os.ttyname(slave)
        self._slave = slave  # kept open so the pair survives the driver closing its end

    def close(self) -> None:
        for fd in (self.fd, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fd = self._slave = -1

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
