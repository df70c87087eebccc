"""A One-Tech 2B-ATT203 tripod turnstile on the far end of a pty: it answers each open frame
with "passed" or "not passed" according to the simulated person, through the fault switches.

``person``: ``"passes"`` (after ``walk_s``), ``"hesitates"`` (after ``hesitate_s``: still a
passage if that is within the gate's own ``gate_timeout_s``, else "not passed"), ``"never"``
(the gate's time runs out: "not passed" after ``gate_timeout_s``), ``"reverses"`` (pushes the
arm backwards: "not passed" after ``walk_s``)."""

from __future__ import annotations

from drivers import onetech_turnstile as proto
from drivers.protocol import FrameError
from drivers.sim.base import SerialSim

PASSES, HESITATES, NEVER, REVERSES = "passes", "hesitates", "never", "reverses"


class OneTechTurnstileSim(SerialSim):
    def __init__(self, link: str | None = None):
        super().__init__(link)
        self.person = PASSES
        self.walk_s = 0.2
        self.hesitate_s = 3.0
        self.gate_timeout_s = 2.0
        self.opens: list[str] = []  # directions opened, in order
        self.bad_frames = 0
        self._buffer = b""

    def received(self, data: bytes) -> None:
        frames, garbage, self._buffer = proto.split(self._buffer + data)
        self.bad_frames += garbage > 0
        for frame in frames:
            try:
                message = proto.decode(frame)
            except FrameError:
                self.bad_frames += 1
                continue
            if message.code == "open":
                self.opens.append(message.direction.value)
                self._person_at(message.direction)

    def _person_at(self, direction) -> None:
        def answer(code):
            return lambda: self.send(proto.encode(code, direction))
        if self.person == PASSES:
            self.after(self.walk_s, answer(proto.PASSED))
        elif self.person == REVERSES:
            self.after(self.walk_s, answer(proto.NOT_PASSED))
        elif self.person == HESITATES and self.hesitate_s < self.gate_timeout_s:
            self.after(self.hesitate_s, answer(proto.PASSED))
        else:
            self.after(self.gate_timeout_s, answer(proto.NOT_PASSED))

    def stopped(self) -> None:
        self._buffer = b""
