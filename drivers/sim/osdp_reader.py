"""An OSDP card reader (libosdp's peripheral device) on the far end of a pty.

``tap(card_hex, bits=None)`` reports a card read (Wiegand format, ``bits`` defaulting to the
data's length). The fault switches act on the reader's replies, as in every simulator:
``drop`` loses the next N, ``silence`` all of them (the control panel marks the reader offline),
``garble`` corrupts each (its CRC fails), ``delay`` holds each back (a reply later than 200 ms
is a missed poll). ``scbk`` (32 hex characters) makes it a secure-channel reader.
``commands`` lists what the control panel sent (LED, buzzer, output).
"""

from __future__ import annotations

import threading

import osdp

from drivers.sim.base import SerialSim


class _SimChannel(osdp.Channel):
    def __init__(self, sim: OsdpReaderSim):
        super().__init__()
        self.sim = sim

    def read(self, max_bytes: int) -> bytes:
        return self.sim._take(max_bytes)

    def write(self, buf: bytes) -> int:
        self.sim.send(bytes(buf))
        return len(buf)

    def flush(self) -> None:
        """Nothing buffered."""


class OsdpReaderSim(SerialSim):
    def __init__(self, link: str | None = None, address: int = 101, scbk: str | None = None):
        super().__init__(link)
        self.address = address
        self.key = None if scbk is None else bytes.fromhex(scbk)
        self.commands: list[dict] = []
        self._inbox = bytearray()
        self._inbox_lock = threading.Lock()
        self._pd: osdp.PeripheralDevice | None = None

    def start(self) -> None:
        if self.running:
            return
        super().start()
        info = osdp.PDInfo(self.address, _SimChannel(self), scbk=self.key)
        caps = osdp.PDCapabilities([(osdp.Capability.OutputControl, 1, 1),
                                    (osdp.Capability.LEDControl, 1, 1),
                                    (osdp.Capability.AudibleControl, 1, 1)])
        self._pd = osdp.PeripheralDevice(info, caps, log_level=osdp.LogLevel.Error,
                                         command_handler=self._command)
        self._pd.start()

    def stop(self) -> None:
        pd, self._pd = self._pd, None
        if pd is not None:
            pd.teardown()
        super().stop()

    replug = start
    unplug = stop

    def tap(self, card_hex: str, bits: int | None = None) -> None:
        data = bytes.fromhex(card_hex)
        if self._pd is None:
            raise RuntimeError("simulator not started")
        self._pd.submit_event({"event": osdp.Event.CardRead, "reader_no": 0, "direction": 0,
                               "length": len(data) * 8 if bits is None else bits,
                               "format": osdp.CardFormat.Wiegand, "data": data})

    def received(self, data: bytes) -> None:
        with self._inbox_lock:
            self._inbox += data

    def stopped(self) -> None:
        with self._inbox_lock:
            self._inbox.clear()

    def _take(self, max_bytes: int) -> bytes:
        with self._inbox_lock:
            out = bytes(self._inbox[:max_bytes])
            del self._inbox[:max_bytes]
        return out

    def _command(self, command: dict):
        self.commands.append(command)
        return 0, None
