"""The serial transport every serial driver shares: open and close are idempotent, bytes go
out and come back, and every way a port can fail becomes a :class:`PermanentError` (the port
is gone or cannot be opened) — a reply that does not come is the protocol's business."""

from __future__ import annotations

import contextlib
import os
import select

import serial

from drivers.base import PermanentError


class SerialLink:
    """One serial port, opened exclusively (two processes on one RS-485 line garble each
    other). ``port`` may be a symlink such as /dev/serial/by-id/…, which survives replugging."""

    def __init__(self, port: str, baudrate: int, device_id: str):
        self.port = port
        self.baudrate = baudrate
        self.device_id = device_id
        self._serial: serial.Serial | None = None

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        if self._serial is not None:
            return
        if not os.path.exists(self.port):
            raise PermanentError(f"no serial port at {self.port}", self.device_id)
        try:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=0,
                                         write_timeout=2, exclusive=True)
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError, ValueError) as exc:
            self.close()
            raise PermanentError(f"cannot open {self.port}: {exc}", self.device_id) from exc

    def close(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise PermanentError(f"{self.port} is not open", self.device_id)
        return self._serial

    def write(self, data: bytes) -> None:
        port = self._port()
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise PermanentError(f"{self.port} write failed: {exc}", self.device_id) from exc

    def read(self, timeout: float) -> bytes:
        """What arrives within ``timeout`` seconds (at least one byte), or b"" if nothing."""
        port = self._port()
        try:
            ready, _, _ = select.select([port.fileno()], [], [], max(timeout, 0))
            if not ready:
                return b""
            data = os.read(port.fileno(), 4096)
        except (serial.SerialException, OSError, ValueError) as exc:
            self.close()
            raise PermanentError(f"{self.port} read failed: {exc}", self.device_id) from exc
        if not data:  # readable but empty: the other end is gone (a pulled USB adapter)
            self.close()
            raise PermanentError(f"{self.port} disconnected", self.device_id)
        return data

    def discard_input(self) -> None:
        """Drop stale bytes (a late reply to an earlier request) before a new request."""
        while self.read(0):
            pass
