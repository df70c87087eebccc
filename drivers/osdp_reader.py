"""OSDP card readers (SIA OSDP, IEC 60839-11-5) on RS-485, through libosdp's control panel.

The appliance is the control panel (CP); the reader is a peripheral device (PD) at
``address``. libosdp polls it (a PD must answer within 200 ms, so the poll doubles as link
supervision), runs the AES secure channel when a ``scbk`` (secure channel base key, 16 bytes
as 32 hex characters) is set, and hands over card reads as events. A card read becomes
``Scan(RFID, data=<card data in upper-case hex>, fields={"bits", "format", "reader_no"})``.

libosdp runs its own refresh thread for the CP (every 20 ms); this driver's methods are
still called from the one thread that owns the device. The serial port is read and written
from libosdp's thread through :class:`_SerialChannel`, which keeps the first port error for
the owner thread to raise as :class:`PermanentError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

import osdp
import serial

from drivers.base import Health, PermanentError, Scan, ScanKind
from drivers.health import HealthTracker

log = logging.getLogger(__name__)

FORMATS = {osdp.CardFormat.Wiegand: "wiegand", osdp.CardFormat.Unspecified: "raw"}


class _SerialChannel(osdp.Channel):
    def __init__(self, port: serial.Serial):
        super().__init__()
        self.port = port
        self.error: Exception | None = None

    def read(self, max_bytes: int) -> bytes:
        if self.error is not None:
            return b""
        try:
            return self.port.read(max_bytes)
        except (serial.SerialException, OSError) as exc:
            self.error = exc
            return b""

    def write(self, buf: bytes) -> int:
        if self.error is not None:
            return len(buf)
        try:
            return self.port.write(buf) or 0
        except (serial.SerialException, OSError) as exc:
            self.error = exc
            return len(buf)

    def flush(self) -> None:
        """Nothing to flush: pyserial writes straight to the port."""


class OsdpReader:
    """Config: ``port``, ``baudrate`` (115200), ``address`` (101; 0..126), ``scbk`` (None:
    plain channel; 32 hex characters: secure channel, enforced), ``online_timeout_s`` (5.0:
    how long open waits for the reader, and how long it may stay offline before the
    driver gives up)."""

    def __init__(self, device_id: str, port: str, baudrate: int = 115200, address: int = 101,
                 scbk: str | None = None, online_timeout_s: float = 5.0):
        if not 0 <= address <= 126:
            raise ValueError(f"OSDP address {address} is not 0..126")
        self.key = None if scbk is None else bytes.fromhex(scbk)
        if self.key is not None and len(self.key) != 16:
            raise ValueError("scbk must be 16 bytes (32 hex characters)")
        self.device_id = device_id
        self.port, self.baudrate, self.address = port, baudrate, address
        self.online_timeout_s = online_timeout_s
        self._serial: serial.Serial | None = None
        self._channel: _SerialChannel | None = None
        self._cp: osdp.ControlPanel | None = None
        self._offline_since: float | None = None
        self._health = HealthTracker()

    def open(self) -> None:
        if self._cp is not None:
            return
        if not os.path.exists(self.port):
            raise self._down(f"no serial port at {self.port}")
        try:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=0, exclusive=True)
        except (serial.SerialException, OSError) as exc:
            raise self._down(f"cannot open {self.port}: {exc}") from exc
        self._channel = _SerialChannel(self._serial)
        flags = [osdp.LibFlag.EnforceSecure] if self.key else []
        info = osdp.PDInfo(self.address, self._channel, scbk=self.key, flags=flags)
        self._cp = osdp.ControlPanel([info], log_level=osdp.LogLevel.Error)
        self._cp.start()
        deadline = time.monotonic() + self.online_timeout_s
        while not self._ready():
            if time.monotonic() > deadline or self._channel.error is not None:
                self.close()
                raise self._down(f"no OSDP reader answering at address {self.address}"
                                 + (" with the secure channel" if self.key else ""))
            time.sleep(0.02)
        self._offline_since = None
        self._health.opened()

    def close(self) -> None:
        cp, self._cp = self._cp, None
        if cp is not None:
            cp.teardown()
        port, self._serial = self._serial, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()
        self._channel = None
        self._health.down("closed")

    def health(self) -> Health:
        return self._health.snapshot(
            online=int(self._cp is not None and self._cp.is_online(self.address)),
            secure_channel=int(self._cp is not None and self._cp.is_sc_active(self.address)))

    def read(self, timeout: float) -> Scan | None:
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            cp = self._check()
            event = cp.get_event(self.address, timeout=min(0.1, max(deadline - time.monotonic(),
                                                                    0)))
            if event is not None:
                scan = self._scan(event)
                if scan is not None:
                    return scan
            if time.monotonic() >= deadline:
                return None

    def _scan(self, event: dict) -> Scan | None:
        if event.get("event") != osdp.Event.CardRead:
            self._health.count("other_events")
            return None
        data = bytes(event.get("data", b""))
        self._health.ok()
        self._health.count("cards")
        return Scan(ScanKind.RFID, data.hex().upper(), self.device_id, fields={
            "bits": event.get("length", len(data) * 8),
            "format": FORMATS.get(event.get("format"), str(event.get("format"))),
            "reader_no": event.get("reader_no", 0)})

    def _ready(self) -> bool:
        cp = self._cp
        return cp is not None and cp.is_online(self.address) and \
            (self.key is None or cp.is_sc_active(self.address))

    def _check(self) -> osdp.ControlPanel:
        if self._cp is None or self._channel is None:
            raise PermanentError("OSDP reader is not open", self.device_id)
        if self._channel.error is not None:
            detail = f"{self.port} failed: {self._channel.error}"
            self.close()
            raise self._down(detail)
        if self._ready():
            if self._offline_since is not None:
                self._health.ok()  # back online
            self._offline_since = None
        elif self._offline_since is None:
            self._offline_since = time.monotonic()
            self._health.failed("offline", "reader stopped answering polls")
        elif time.monotonic() - self._offline_since > self.online_timeout_s:
            self.close()
            raise self._down(f"reader offline for more than {self.online_timeout_s:g} s")
        return self._cp

    def _down(self, detail: str) -> PermanentError:
        self._health.down(detail)
        return PermanentError(detail, self.device_id)
