"""One-Tech 2B-ATT203: the manual's frames, broken ones, and the driver against the simulated
gate over a pty pair."""

from __future__ import annotations

import pytest

from drivers import onetech_turnstile as proto
from drivers.base import DeviceState, Direction, PermanentError, TemporaryError, Turnstile
from drivers.base import TurnstileEventKind as Kind
from drivers.protocol import FrameError
from drivers.sim.onetech_turnstile import HESITATES, NEVER, REVERSES, OneTechTurnstileSim
from tests.drivers.waiting import poll_until


@pytest.mark.parametrize("frame, code, direction", [
    ("fe 80 01 00 00 00 ab", "open", Direction.A),        # the manual's "open A"
    ("fe 80 02 00 00 00 ab", "open", Direction.B),
    ("fe 81 01 00 00 00 ab", "passed", Direction.A),      # "the pedestrian has been past"
    ("fe 81 02 00 00 00 ab", "passed", Direction.B),
    ("fe 44 01 00 00 00 ab", "not_passed", Direction.A),  # timeout or pushed backwards
    ("fe 44 02 00 00 00 ab", "not_passed", Direction.B),
])
def test_the_manuals_frames(frame, code, direction):
    assert proto.decode(bytes.fromhex(frame)) == proto.Message(code, direction)
    assert proto.encode({"open": 0x80, "passed": 0x81, "not_passed": 0x44}[code],
                        direction) == bytes.fromhex(frame)


@pytest.mark.parametrize("frame, problem", [
    ("fe 81 01 00 00 ab", "6 bytes"),           # truncated
    ("fe 81 01 00 00 00 00 ab", "8 bytes"),     # too long
    ("fe 81 01 00 00 00 aa", "not framed"),     # bad end byte (the frame's only check)
    ("fd 81 01 00 00 00 ab", "not framed"),     # bad start byte
    ("fe 99 01 00 00 00 ab", "unknown turnstile code 99"),
    ("fe 81 03 00 00 00 ab", "direction 03"),
    ("fe 81 01 00 07 00 ab", "padding"),
])
def test_broken_frames_are_refused(frame, problem):
    with pytest.raises(FrameError, match=problem):
        proto.decode(bytes.fromhex(frame))


def test_split_skips_garbage_and_keeps_the_rest():
    stream = bytes.fromhex("00 fe 11 fe 81 01 00 00 00 ab fe 44")
    frames, garbage, rest = proto.split(stream)
    assert frames == [bytes.fromhex("fe 81 01 00 00 00 ab")]
    assert garbage == 3 and rest == bytes.fromhex("fe 44")


@pytest.fixture
def gate(tmp_path):
    with OneTechTurnstileSim(link=str(tmp_path / "ttyRS485-gate")) as sim:
        yield sim


def make(gate, **settings):
    turnstile = proto.OneTechTurnstile("lane-2-turnstile", gate.port,
                                       **{"answer_timeout_s": 5.0, **settings})
    turnstile.open()
    return turnstile


@pytest.fixture
def turnstile(gate):
    t = make(gate)
    yield t
    t.close()


def kinds(events):
    return [(e.kind, e.direction) for e in events]


def test_a_person_passing_each_way(gate, turnstile):
    assert isinstance(turnstile, Turnstile) and turnstile.has_feedback
    turnstile.unlock(Direction.A)
    assert kinds(poll_until(turnstile, bool)) == [(Kind.PASSED, Direction.A)]
    turnstile.unlock(Direction.B)
    assert kinds(poll_until(turnstile, bool)) == [(Kind.PASSED, Direction.B)]
    assert gate.opens == ["A", "B"]
    assert turnstile.health().state is DeviceState.UP


@pytest.mark.parametrize("person", [NEVER, REVERSES, HESITATES])
def test_the_gate_reports_not_passed_as_timeout(gate, turnstile, person):
    gate.person, gate.gate_timeout_s = person, 0.5
    turnstile.unlock(Direction.A)
    assert kinds(poll_until(turnstile, bool)) == [(Kind.TIMEOUT, Direction.A)]
    assert turnstile.health().state is DeviceState.UP  # the gate answered


def test_a_hesitating_person_within_the_gates_time_still_passes(gate, turnstile):
    gate.person, gate.hesitate_s, gate.gate_timeout_s = HESITATES, 0.5, 3.0
    turnstile.unlock(Direction.A)
    assert kinds(poll_until(turnstile, bool)) == [(Kind.PASSED, Direction.A)]


def test_a_garbled_answer_is_temporary_and_the_lane_times_out(gate):
    turnstile = make(gate, answer_timeout_s=1.0)
    try:
        gate.garble = True
        turnstile.unlock(Direction.A)
        with pytest.raises(TemporaryError, match="garbled"):
            poll_until(turnstile, bool)
        assert turnstile.health().metrics["garbled"] == 1
        assert kinds(poll_until(turnstile, bool)) == [(Kind.TIMEOUT, Direction.A)]
    finally:
        turnstile.close()


def test_garbage_on_the_line_is_counted(gate, turnstile):
    gate.send_raw(b"\x00\x13\xfe\x37")
    with pytest.raises(TemporaryError):
        poll_until(turnstile, bool)
    assert turnstile.health().state is DeviceState.DEGRADED
    turnstile.unlock(Direction.A)
    assert kinds(poll_until(turnstile, bool)) == [(Kind.PASSED, Direction.A)]
    assert turnstile.health().state is DeviceState.UP


def test_a_dropped_answer_becomes_a_timeout(gate):
    turnstile = make(gate, answer_timeout_s=1.0)
    try:
        gate.drop = 1
        turnstile.unlock(Direction.A)
        assert kinds(poll_until(turnstile, bool)) == [(Kind.TIMEOUT, Direction.A)]
        assert turnstile.health().metrics["no_answer"] == 1
        assert turnstile.health().state is DeviceState.DEGRADED
    finally:
        turnstile.close()


def test_a_slow_gate_is_waited_for(gate, turnstile):
    gate.delay = 0.5
    turnstile.unlock(Direction.B)
    assert kinds(poll_until(turnstile, bool)) == [(Kind.PASSED, Direction.B)]


def test_a_silent_gate_goes_down_and_its_timeouts_are_not_lost(gate):
    turnstile = make(gate, answer_timeout_s=0.3, down_after=2)
    gate.silence = True
    turnstile.unlock(Direction.A)
    assert kinds(poll_until(turnstile, bool)) == [(Kind.TIMEOUT, Direction.A)]
    turnstile.unlock(Direction.B)
    with pytest.raises(PermanentError, match="not answering"):
        poll_until(turnstile, bool)
    assert turnstile.health().state is DeviceState.DOWN
    gate.silence = False
    turnstile.open()
    assert kinds(turnstile.poll(0.0)) == [(Kind.TIMEOUT, Direction.B)]
    turnstile.close()


def test_unplug_and_replug(gate, turnstile):
    gate.person = NEVER
    gate.gate_timeout_s = 30
    turnstile.unlock(Direction.A)
    gate.unplug()
    with pytest.raises(PermanentError):
        poll_until(turnstile, lambda ev: False, timeout=10)
    assert turnstile.health().state is DeviceState.DOWN
    with pytest.raises(PermanentError, match="no serial port"):
        turnstile.open()
    gate.replug()
    gate.person = "passes"
    turnstile.open()
    assert kinds(turnstile.poll(0.0)) == [(Kind.TIMEOUT, Direction.A)]
    turnstile.unlock(Direction.A)
    assert kinds(poll_until(turnstile, bool)) == [(Kind.PASSED, Direction.A)]
