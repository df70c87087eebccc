"""A Waveshare-style Modbus RTU relay/IO board wired to a turnstile, on the far end of a pty.

The board answers FC01 (coils), FC02 (discrete inputs) and FC05 (coil on/off, and flash-on at
``0x0200 + channel``: the board times the pulse itself); any other function gets an
"illegal function" exception, a request for another unit or with a bad CRC gets no reply, as
on a real bus. Wiring, as in docs/drivers.md: relay 0 = unlock A, relay 1 = unlock B,
input 0 = PASS A, input 1 = PASS B, input 2 = alarm.

The simulated person at the lane reacts to an unlock relay closing: ``person = "passes"``
walks through after ``walk_s``; ``"hesitates"`` passes after ``hesitate_s`` (later than the
lane's passage time); ``"never"`` does not come. A passage closes the PASS contact for
``pass_pulse_s``, like a turnstile's PASS relay. ``alarm = True`` closes the alarm input.
The turnstile only lets someone through within ``gate_window_s`` of its unlock pulse.
"""

from __future__ import annotations

import time

from drivers import modbus_rtu as rtu
from drivers.protocol import FrameError
from drivers.sim.base import SerialSim

PASSES, HESITATES, NEVER = "passes", "hesitates", "never"


class ModbusBoardSim(SerialSim):
    def __init__(self, link: str | None = None, unit: int = 1, channels: int = 8,
                 flash: bool = True):
        super().__init__(link)
        self.unit = unit
        self.flash = flash  # False: a board without flash-on (answers "illegal address")
        self.coils = [False] * channels
        self.inputs = [False] * channels
        self.unlock_coils = {"A": 0, "B": 1}
        self.pass_inputs = {"A": 0, "B": 1}
        self.alarm_input = 2
        self.person = PASSES
        self.walk_s = 0.3
        self.hesitate_s = 3.0
        self.pass_pulse_s = 0.5
        self.gate_window_s = 10.0
        self.requests: list[rtu.Request] = []   # every valid request addressed to us
        self.flashes: list[tuple[int, int]] = []  # (channel, ms) of each flash-on
        self.passages: list[tuple[float, str]] = []
        self.bad_requests = 0
        self._buffer = b""
        self._flash_seq = [0] * channels  # a newer flash outlives an older one's timer

    @property
    def alarm(self) -> bool:
        return self.inputs[self.alarm_input]

    @alarm.setter
    def alarm(self, on: bool) -> None:
        self.inputs[self.alarm_input] = on

    def stopped(self) -> None:
        self.coils = [False] * len(self.coils)  # power lost: relays drop out
        self._buffer = b""
        # The timers that end a PASS pulse are gone with the power: a passage contact is
        # momentary and must not read as closed after the replug. (The alarm input is the
        # turnstile's own and keeps its state.)
        for index in self.pass_inputs.values():
            self.inputs[index] = False

    # --- the bus ---------------------------------------------------------------------------

    def received(self, data: bytes) -> None:
        self._buffer += data
        while (length := rtu.request_length(self._buffer)) is not None \
                and len(self._buffer) >= length:
            frame, self._buffer = self._buffer[:length], self._buffer[length:]
            try:
                request = rtu.parse_request(frame)
            except FrameError:
                self.bad_requests += 1
                self._buffer = b""  # resynchronise on the next request, as a gap would
                return
            if request.unit == self.unit:
                self.requests.append(request)
                self.send(self._answer(request))

    def _answer(self, req: rtu.Request) -> bytes:
        n = len(self.coils)
        if req.function in (rtu.READ_COILS, rtu.READ_DISCRETE_INPUTS):
            bits = self.coils if req.function == rtu.READ_COILS else self.inputs
            if req.value < 1 or req.address + req.value > n:
                return rtu.exception_reply(self.unit, req.function, rtu.ILLEGAL_ADDRESS)
            return rtu.bits_reply(self.unit, req.function,
                                  bits[req.address:req.address + req.value])
        if req.function == rtu.WRITE_SINGLE_COIL:
            if req.address < n and req.value in (rtu.COIL_ON, rtu.COIL_OFF):
                self._set_coil(req.address, req.value == rtu.COIL_ON)
                return rtu.echo_reply(req)
            channel = req.address - rtu.FLASH_BASE
            if self.flash and 0 <= channel < n and 1 <= req.value <= 0x7FFF:
                self.flashes.append((channel, req.value * 100))
                self._flash_seq[channel] += 1
                seq = self._flash_seq[channel]
                self._set_coil(channel, True)
                self.after(req.value / 10, lambda: self._flash_seq[channel] == seq
                           and self._set_coil(channel, False))
                return rtu.echo_reply(req)
            code = rtu.ILLEGAL_VALUE if req.address < n else rtu.ILLEGAL_ADDRESS
            return rtu.exception_reply(self.unit, req.function, code)
        return rtu.exception_reply(self.unit, req.function, rtu.ILLEGAL_FUNCTION)

    # --- the lane --------------------------------------------------------------------------

    def _set_coil(self, channel: int, on: bool) -> None:
        was, self.coils[channel] = self.coils[channel], on
        if on and not was:
            for direction, coil in self.unlock_coils.items():
                if coil == channel:
                    self._unlocked(direction)

    def _unlocked(self, direction: str) -> None:
        if self.person == NEVER:
            return
        wait = self.walk_s if self.person == PASSES else self.hesitate_s
        if wait <= self.gate_window_s:
            self.after(wait, lambda: self._pass(direction))

    def _pass(self, direction: str) -> None:
        index = self.pass_inputs[direction]
        self.passages.append((time.monotonic(), direction))
        self.inputs[index] = True
        self.after(self.pass_pulse_s, lambda: self.inputs.__setitem__(index, False))
