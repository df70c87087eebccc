"""An LC USB relay on the far end of a pty: it switches its relays on the driver's frames and
records when, so tests can measure the pulse. The board never answers, so the fault switches
act on what it receives: ``drop`` loses the next N commands, ``silence`` ignores all of
them (a dead board), ``garble`` corrupts each command on the line (the board rejects it),
``delay`` switches the relay that many seconds late."""

from __future__ import annotations

import time

from drivers import usb_relay
from drivers.protocol import FrameError
from drivers.sim.base import SerialSim


class UsbRelaySim(SerialSim):
    def __init__(self, link: str | None = None):
        super().__init__(link)
        self.relays: dict[int, bool] = {}
        self.history: list[tuple[float, int, bool]] = []  # (monotonic, channel, on)
        self.rejected = 0
        self._buffer = b""

    def is_on(self, channel: int) -> bool:
        return self.relays.get(channel, False)

    def pulses(self, channel: int) -> list[float]:
        """Seconds each completed on-period of ``channel`` lasted."""
        out, since = [], None
        for at, ch, on in self.history:
            if ch != channel:
                continue
            if on and since is None:
                since = at
            elif not on and since is not None:
                out.append(at - since)
                since = None
        return out

    def received(self, data: bytes) -> None:
        frames, skipped, self._buffer = usb_relay.split(self._buffer + data)
        self.rejected += 1 if skipped else 0
        for frame in frames:
            if self.silence:
                continue
            if self.drop > 0:
                self.drop -= 1
                continue
            if self.garble:
                frame = self.corrupt(frame)
            if self.delay > 0:
                self.after(self.delay, lambda f=frame: self._apply(f))
            else:
                self._apply(frame)

    def _apply(self, frame: bytes) -> None:
        try:
            channel, on = usb_relay.decode(frame)
        except FrameError:
            self.rejected += 1
            return
        self.relays[channel] = on
        self.history.append((time.monotonic(), channel, on))

    def stopped(self) -> None:
        self.relays.clear()  # power lost: every relay drops out
        self._buffer = b""
