"""A turnstile wired by dry contacts to a Modbus RTU relay/IO board on RS-485.

The register map is the Waveshare "Modbus RTU Relay" / "Modbus RTU IO 8CH" family's (see
docs/drivers.md): relays are coils 0..7, inputs are discrete inputs 0..7, and FC05 to
``0x0200 + relay`` with value ``n`` closes the relay for ``n × 100 ms`` — the *board* times
the pulse, so a crashed or hung appliance never leaves a lane unlocked. A board that does not
know that command answers "illegal data address"; the driver reports that as a permanent
error naming the register, rather than falling back to holding a relay from software.

Unlock A/B pulse the lane's unlock relays; PASS A/B and the alarm are inputs, polled with
FC02 every ``poll_ms``. A PASS input rising is a passage; no passage within
``passage_timeout_s`` of an unlock is a timeout (reported once, by :meth:`poll`). The alarm
input's edges are reported both ways, and its state at open as ALARM_ON if it is already on.

Health: every exchange is timed; a reply that never comes counts as a timeout, bytes that do
not make a valid frame as a CRC error. A failed exchange makes the board DEGRADED and raises
:class:`TemporaryError`; ``down_after`` failures in a row make it DOWN and raise
:class:`PermanentError`, as does the port vanishing. Opening reads the inputs once: a port
with no board answering on it does not open (``PermanentError``, DOWN).
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Callable

from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import WriteSingleCoilRequest

from drivers import modbus_rtu as rtu
from drivers.base import (
    Direction,
    Health,
    PermanentError,
    TemporaryError,
    TurnstileEvent,
    TurnstileEventKind,
)
from drivers.health import HealthTracker
from drivers.settings import BAUD_RATES, Field

log = logging.getLogger(__name__)
RELAYS = INPUTS = tuple(range(8))  # an 8-channel board
# pymodbus logs every unanswered request at ERROR, again at each retry of a board that is not
# there; each failure reaches this driver as an exception, and the device's owner logs the
# state change once.
logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)


class _FlashOnRequest(WriteSingleCoilRequest):
    """FC05 with a raw value: Waveshare's flash-on (pymodbus only writes FF00/0000)."""

    def __init__(self, address: int = 0, ticks: int = 1, dev_id: int = 1):
        super().__init__(address=address, bits=[True], dev_id=dev_id)
        self.ticks = ticks

    def encode(self) -> bytes:
        return struct.pack(">HH", self.address, self.ticks)


class ModbusTurnstile:
    """Config: ``port``, ``baudrate`` (9600), ``unit`` (1), ``unlock_a``/``unlock_b`` relay
    numbers (0, 1; ``unlock_b`` None for a one-way lane), ``pass_a``/``pass_b`` input numbers
    (0, 1), ``alarm_input`` (2; None when not wired), ``pulse_ms`` (500, rounded up to the
    board's 100 ms steps), ``passage_timeout_s`` (5.0: the lane's time to pass),
    ``poll_ms`` (50), ``reply_timeout_ms`` (300), ``down_after`` (3 failed exchanges)."""

    has_feedback = True
    # the Devices page's form (drivers.settings.from_form); the port is the page's own field
    # and passage_timeout_s the lane's
    FORM = {
        "unit": Field("Board address (Modbus unit)", "The address set on the board, 1 to 247 "
                      "(Waveshare boards leave the factory at 1).", minimum=1, maximum=247),
        "baudrate": Field("Baud rate", "The board's serial speed (8 data bits, no parity, "
                          "1 stop bit).", choices=BAUD_RATES),
        "unlock_a": Field("Unlock relay, direction A", "The relay wired to the turnstile's "
                          "unlock input for direction A.", choices=RELAYS),
        "unlock_b": Field("Unlock relay, direction B", "The relay for direction B; none for a "
                          "one-way lane.", choices=(None, *RELAYS), none_label="none: one way"),
        "pass_a": Field("Passage input, direction A", "The board input the turnstile's "
                        "passage contact for direction A is wired to.", choices=INPUTS),
        "pass_b": Field("Passage input, direction B", "The input for direction B's passage "
                        "contact; none for a one-way lane.", choices=(None, *INPUTS),
                        none_label="none: one way"),
        "alarm_input": Field("Alarm input", "The input the turnstile's alarm contact is wired "
                             "to, if any.", choices=(None, *INPUTS), none_label="not wired"),
        "pulse_ms": Field("Unlock pulse (ms)", "How long the relay closes; the board times it, "
                          "in steps of 100 ms.", minimum=100, maximum=0x7FFF * 100),
        "reply_timeout_ms": Field("Reply timeout (ms)", "How long to wait for the board's "
                                  "answer before counting a failed exchange.",
                                  minimum=50, maximum=5000),
        "down_after": Field("Down after", "Failed exchanges in a row before the board is "
                            "reported down.", minimum=1, maximum=100),
    }

    def __init__(self, device_id: str, port: str, baudrate: int = 9600, unit: int = 1,
                 unlock_a: int = 0, unlock_b: int | None = 1, pass_a: int = 0,
                 pass_b: int | None = 1, alarm_input: int | None = 2, pulse_ms: int = 500,
                 passage_timeout_s: float = 5.0, poll_ms: int = 50,
                 reply_timeout_ms: int = 300, down_after: int = 3):
        if not 1 <= unit <= 247:
            raise ValueError(f"modbus unit {unit} is not 1..247")
        if not 100 <= pulse_ms <= 0x7FFF * 100:
            raise ValueError(f"pulse_ms {pulse_ms} is outside 100..{0x7FFF * 100}")
        self.device_id = device_id
        self.port, self.baudrate, self.unit = port, baudrate, unit
        self.unlock_coils = {Direction.A: unlock_a}
        self.pass_inputs = {Direction.A: pass_a}
        if unlock_b is not None:
            self.unlock_coils[Direction.B] = unlock_b
        if pass_b is not None:
            self.pass_inputs[Direction.B] = pass_b
        self.alarm_input = alarm_input
        self.ticks = -(-pulse_ms // 100)
        self.passage_timeout_s = passage_timeout_s
        self.poll_s = poll_ms / 1000
        self.reply_timeout_s = reply_timeout_ms / 1000
        wired = [*self.pass_inputs.values()] + ([] if alarm_input is None else [alarm_input])
        self._first_input, self._input_count = min(wired), max(wired) - min(wired) + 1
        self._client: ModbusSerialClient | None = None
        self._health = HealthTracker(down_after)
        self._pending: dict[Direction, float] = {}  # direction -> passage deadline
        self._orphaned: list[Direction] = []  # pending when the driver closed
        self._last: dict[str, bool] | None = None
        self._rx = b""

    # --- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        if self._client is not None:
            return
        if not os.path.exists(self.port):
            self._health.down(f"no serial port at {self.port}")
            raise PermanentError(f"no serial port at {self.port}", self.device_id)
        client = ModbusSerialClient(self.port, baudrate=self.baudrate,
                                    timeout=self.reply_timeout_s, retries=0,
                                    trace_packet=self._trace)
        if not client.connect():
            client.close()
            self._health.down(f"cannot open {self.port}")
            raise PermanentError(f"cannot open {self.port}", self.device_id)
        self._client = client
        self._last = None
        self._health.opened()
        self._probe()

    def _probe(self) -> None:
        """A port opens whether or not a board is wired to it: the board is open only once it
        answers. A board silent for ``down_after`` reads in a row (or refusing them) leaves the
        driver closed and DOWN, so a lane with no board never shows as up between retries."""
        failure: Exception | None = None
        for _ in range(self._health.down_after):
            try:
                self._exchange("read inputs", lambda c: c.read_discrete_inputs(
                    self._first_input, count=self._input_count, device_id=self.unit))
                return
            except TemporaryError as exc:
                failure = exc
            except PermanentError as exc:
                failure = exc
                break
        detail = f"no board answers as unit {self.unit} on {self.port}: {failure}"
        client, self._client = self._client, None
        if client is not None:
            client.close()
        self._health.down(detail)
        raise PermanentError(detail, self.device_id)

    def close(self) -> None:
        """Closes the port. Unlocks still waiting for a passage are reported as TIMEOUT by
        the first poll after reopening: nobody is known to have passed."""
        self._orphaned.extend(d for d in self._pending if d not in self._orphaned)
        self._pending.clear()
        client, self._client = self._client, None
        if client is not None:
            client.close()
        self._health.down("closed")

    # --- the Turnstile protocol ------------------------------------------------------------

    def unlock(self, direction: Direction) -> None:
        coil = self.unlock_coils.get(direction)
        if coil is None:
            raise PermanentError(f"no unlock relay wired for direction {direction}",
                                 self.device_id)
        address = rtu.FLASH_BASE + coil
        reply = self._exchange(f"flash relay {coil}", lambda c: c.execute(
            False, _FlashOnRequest(address=address, ticks=self.ticks, dev_id=self.unit)))
        if getattr(reply, "address", None) != address:
            self._health.failed("bad_replies", "flash-on reply does not echo the request")
            raise TemporaryError("flash-on reply does not echo the request", self.device_id)
        self._pending[direction] = time.monotonic() + self.passage_timeout_s
        self._health.count("unlocks")

    def poll(self, timeout: float) -> list[TurnstileEvent]:
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            scanned = self._scan()  # may raise: orphaned timeouts stay for the next poll
            events = [TurnstileEvent(TurnstileEventKind.TIMEOUT, d) for d in self._orphaned]
            self._orphaned.clear()
            events += scanned
            now = time.monotonic()
            if events or now >= deadline:
                return events
            time.sleep(min(self.poll_s, deadline - now))

    def health(self) -> Health:
        return self._health.snapshot(
            waiting_for_passage=len(self._pending),
            alarm=None if self._last is None or self.alarm_input is None
            else int(self._last["alarm"]))

    # --- inside ----------------------------------------------------------------------------

    def _scan(self) -> list[TurnstileEvent]:
        reply = self._exchange("read inputs", lambda c: c.read_discrete_inputs(
            self._first_input, count=self._input_count, device_id=self.unit))
        bits = list(getattr(reply, "bits", []))
        if len(bits) < self._input_count:
            self._health.failed("bad_replies", "input reply too short")
            raise TemporaryError("input reply too short", self.device_id)
        now = {f"pass_{d}": bits[i - self._first_input] for d, i in self.pass_inputs.items()}
        if self.alarm_input is not None:
            now["alarm"] = bits[self.alarm_input - self._first_input]
        last, self._last = self._last, now
        events: list[TurnstileEvent] = []
        if last is None:
            if now.get("alarm"):
                events.append(TurnstileEvent(TurnstileEventKind.ALARM_ON))
        else:
            for direction in self.pass_inputs:
                key = f"pass_{direction}"
                if now[key] and not last[key]:
                    self._pending.pop(direction, None)
                    events.append(TurnstileEvent(TurnstileEventKind.PASSED, direction))
            if "alarm" in now and now["alarm"] != last["alarm"]:
                kind = TurnstileEventKind.ALARM_ON if now["alarm"] else \
                    TurnstileEventKind.ALARM_OFF
                log.warning("%s: alarm input %s", self.device_id, "on" if now["alarm"] else "off")
                events.append(TurnstileEvent(kind))
        clock = time.monotonic()
        for direction, due in list(self._pending.items()):
            if clock >= due:
                del self._pending[direction]
                events.append(TurnstileEvent(TurnstileEventKind.TIMEOUT, direction))
        return events

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self._rx = b""
        else:
            self._rx = data
        return data

    def _exchange(self, what: str, call: Callable[[ModbusSerialClient], ModbusPDU]) -> ModbusPDU:
        client = self._client
        if client is None:
            raise PermanentError("board port is not open", self.device_id)
        self._rx = b""
        started = time.monotonic()
        try:
            reply = call(client)
        except ConnectionException as exc:
            self._lost(f"{self.port}: {exc}")
            raise PermanentError(f"{self.port} is gone ({what})", self.device_id) from exc
        except ModbusException as exc:
            kind, detail = ("crc_errors", f"{what}: garbled reply") if self._rx else \
                ("timeouts", f"{what}: no reply within {self.reply_timeout_s:g} s")
            if self._health.failed(kind, detail):
                self._lost(detail)
                raise PermanentError(f"board not answering: {detail}", self.device_id) from exc
            raise TemporaryError(detail, self.device_id) from exc
        if reply.isError():
            code = getattr(reply, "exception_code", 0)
            detail = f"{what}: board refused with exception {code:02x}"
            if code == rtu.ILLEGAL_ADDRESS and what.startswith("flash"):
                detail += " (does this board support flash-on at 0x0200 + relay?)"
            self._health.failed("refused", detail)
            raise PermanentError(detail, self.device_id)
        self._health.ok(time.monotonic() - started)
        return reply

    def _lost(self, detail: str) -> None:
        self.close()
        self._health.down(detail)
        log.debug("%s: board down: %s", self.device_id, detail)  # the device's owner logs it
