"""LC Technology "LCUS" USB relay (CH340 serial, 9600 8N1) as a turnstile without feedback.

Protocol (LCUS-1/2/4): four bytes ``A0 <channel 1..4> <00 off | 01 on> <sum of the three
bytes & 0xFF>``; ``A0 01 01 A2`` switches relay 1 on, ``A0 01 00 A1`` off. The board never
answers and has no inputs, so ``has_feedback`` is False: no passage, no timeout, no alarm.

This is the cheap-install exception to the rule that the device times its own pulse: the
driver switches the relay on and switches it off again ``pulse_ms`` later from :meth:`poll`.
A crash between the two leaves the relay closed until the next :meth:`open` (which switches
every configured channel off) — acceptable for demos and for gates that treat their unlock
input as a pulse anyway (PERCo's pulse mode opens for one passage on the falling edge).
"""

from __future__ import annotations

import logging
import time

from drivers.base import Direction, Health, PermanentError, TurnstileEvent
from drivers.health import HealthTracker
from drivers.protocol import FrameError, sum8
from drivers.serial_link import SerialLink
from drivers.settings import BAUD_RATES, Field

log = logging.getLogger(__name__)

START = 0xA0
FRAME_LEN = 4
CHANNELS = tuple(range(1, 9))


def encode(channel: int, on: bool) -> bytes:
    if not 1 <= channel <= 8:
        raise ValueError(f"relay channel {channel} is not 1..8")
    body = bytes([START, channel, 1 if on else 0])
    return body + bytes([sum8(body)])


def decode(frame: bytes) -> tuple[int, bool]:
    """(channel, on) of one 4-byte command."""
    if len(frame) != FRAME_LEN:
        raise FrameError(f"relay frame is {len(frame)} bytes, not 4")
    if frame[0] != START:
        raise FrameError(f"relay frame starts with {frame[0]:02x}, not a0")
    if sum8(frame[:3]) != frame[3]:
        raise FrameError(f"relay frame checksum {frame[3]:02x}, expected {sum8(frame[:3]):02x}")
    if frame[2] not in (0, 1):
        raise FrameError(f"relay state {frame[2]:02x} is neither 00 nor 01")
    if not 1 <= frame[1] <= 8:
        raise FrameError(f"relay channel {frame[1]} is not 1..8")
    return frame[1], frame[2] == 1


def split(buffer: bytes) -> tuple[list[bytes], int, bytes]:
    """Cut a byte stream into candidate frames: (frames, bytes skipped while resynchronising
    on the start byte, the incomplete rest)."""
    frames, skipped, i = [], 0, 0
    while True:
        start = buffer.find(bytes([START]), i)
        if start < 0:
            return frames, skipped + len(buffer) - i, b""
        skipped += start - i
        if len(buffer) - start < FRAME_LEN:
            return frames, skipped, buffer[start:]
        frames.append(buffer[start:start + FRAME_LEN])
        i = start + FRAME_LEN


class UsbRelayTurnstile:
    """Config: ``port``, ``baudrate`` (9600), ``channel_a`` (1), ``channel_b`` (None: the lane
    has one direction), ``pulse_ms`` (500)."""

    has_feedback = False
    # the Devices page's form (drivers.settings.from_form); the port is the page's own field
    FORM = {
        "channel_a": Field("Relay, direction A", "The relay (1 to 8) wired to the turnstile's "
                           "unlock input for direction A.", choices=CHANNELS),
        "channel_b": Field("Relay, direction B", "The relay for direction B; none for a "
                           "one-way lane.", choices=(None, *CHANNELS),
                           none_label="none: one way"),
        "pulse_ms": Field("Unlock pulse (ms)", "How long the relay stays closed (at least "
                          "100 ms).", minimum=100, maximum=10_000),
        "baudrate": Field("Baud rate", "The relay's serial speed (LCUS boards: 9600).",
                          choices=BAUD_RATES),
    }

    def __init__(self, device_id: str, port: str, baudrate: int = 9600, channel_a: int = 1,
                 channel_b: int | None = None, pulse_ms: int = 500):
        self.device_id = device_id
        self.channels = {Direction.A: channel_a}
        if channel_b is not None:
            self.channels[Direction.B] = channel_b
        for channel in self.channels.values():
            encode(channel, False)  # validates the channel number
        if pulse_ms < 100:
            raise ValueError("pulse_ms below 100: turnstile inputs need at least 100 ms")
        self.pulse_s = pulse_ms / 1000
        self._link = SerialLink(port, baudrate, device_id)
        self._off_at: dict[int, float] = {}
        self._health = HealthTracker()

    def open(self) -> None:
        if self._link.is_open:
            return
        try:
            self._link.open()
            # A relay left closed by a crash is opened first.
            for channel in self.channels.values():
                self._link.write(encode(channel, False))
        except PermanentError as exc:
            self._health.down(str(exc))
            raise
        self._health.opened()

    def unlock(self, direction: Direction) -> None:
        channel = self.channels.get(direction)
        if channel is None:
            raise PermanentError(f"no relay channel configured for direction {direction}",
                                 self.device_id)
        self._write(encode(channel, True))
        self._off_at[channel] = time.monotonic() + self.pulse_s
        self._health.count("pulses")

    def poll(self, timeout: float) -> list[TurnstileEvent]:
        """Switches pulses off when due; never has events. Waiting on the port also notices
        an unplugged adapter (the port turns readable and empty)."""
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            now = time.monotonic()
            for channel, off_at in list(self._off_at.items()):
                if off_at <= now:
                    self._write(encode(channel, False))
                    del self._off_at[channel]
            if now >= deadline:
                return []
            wake = min([deadline, *self._off_at.values()])
            try:
                junk = self._link.read(max(wake - now, 0))
            except PermanentError as exc:
                self._lost(exc)
                raise
            if junk:
                self._health.count("unexpected_bytes", len(junk))

    def health(self) -> Health:
        return self._health.snapshot(relays_on=len(self._off_at))

    def close(self) -> None:
        """Switches every pulse in progress off (best effort), then closes the port."""
        if self._link.is_open:
            for channel in list(self._off_at):
                try:
                    self._link.write(encode(channel, False))
                except PermanentError as exc:
                    log.warning("%s: could not switch relay %s off on close: %s",
                                self.device_id, channel, exc)
                    break
        self._off_at.clear()
        self._link.close()
        self._health.down("closed")

    def _write(self, frame: bytes) -> None:
        if not self._link.is_open:
            raise PermanentError("relay port is not open", self.device_id)
        try:
            self._link.write(frame)
        except PermanentError as exc:
            self._lost(exc)
            raise
        self._health.ok()

    def _lost(self, exc: PermanentError) -> None:
        self._off_at.clear()
        self._link.close()
        self._health.down(str(exc))
