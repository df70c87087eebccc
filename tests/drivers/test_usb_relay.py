"""LC USB relay: the frames, and the driver against the simulated board over a pty pair."""

from __future__ import annotations

import pytest

from drivers import usb_relay
from drivers.base import DeviceState, Direction, PermanentError, Turnstile
from drivers.protocol import FrameError
from drivers.sim.usb_relay import UsbRelaySim
from tests.drivers.waiting import until


@pytest.mark.parametrize("channel, on, frame", [
    (1, True, "a0 01 01 a2"),   # the LCUS-1 documentation's "relay on"
    (1, False, "a0 01 00 a1"),  # and "relay off"
    (2, True, "a0 02 01 a3"),
    (4, False, "a0 04 00 a4"),
])
def test_frames_match_the_documented_bytes(channel, on, frame):
    assert usb_relay.encode(channel, on) == bytes.fromhex(frame)
    assert usb_relay.decode(bytes.fromhex(frame)) == (channel, on)


@pytest.mark.parametrize("frame, problem", [
    ("a0 01 01", "3 bytes"),            # truncated
    ("a0 01 01 a2 00", "5 bytes"),      # too long
    ("a0 01 01 a3", "checksum"),        # bad checksum
    ("a1 01 01 a3", "starts with a1"),  # wrong start byte
    ("a0 01 02 a3", "neither"),         # unknown state
    ("a0 00 01 a1", "channel 0"),       # no such channel
])
def test_broken_frames_are_refused(frame, problem):
    with pytest.raises(FrameError, match=problem):
        usb_relay.decode(bytes.fromhex(frame))


def test_split_resynchronises_on_the_start_byte():
    frames, skipped, rest = usb_relay.split(bytes.fromhex("ff 00 a0 01 01 a2 a0 01"))
    assert frames == [bytes.fromhex("a0 01 01 a2")]
    assert skipped == 2 and rest == bytes.fromhex("a0 01")


@pytest.fixture
def sim(tmp_path):
    with UsbRelaySim(link=str(tmp_path / "ttyUSB-relay")) as s:
        yield s


@pytest.fixture
def relay(sim):
    driver = usb_relay.UsbRelayTurnstile("relay-1", sim.port, channel_b=2, pulse_ms=200)
    driver.open()
    until(lambda: len(sim.history) == 2, what="the opening switch-off frames")
    yield driver
    driver.close()


def _pulse_done(relay, sim, channel, count=1):
    until(lambda: (relay.poll(0.02), len(sim.pulses(channel)) >= count)[1])
    return sim.pulses(channel)


def test_is_a_turnstile_without_feedback(relay):
    assert isinstance(relay, Turnstile)
    assert relay.has_feedback is False


def test_open_switches_every_relay_off_first(sim, relay):
    assert [(ch, on) for _, ch, on in sim.history] == [(1, False), (2, False)]


def test_unlock_is_a_pulse_the_driver_times(sim, relay):
    relay.unlock(Direction.A)
    until(lambda: sim.is_on(1))
    assert relay.poll(0.0) == []
    [length] = _pulse_done(relay, sim, 1)
    assert 0.2 <= length < 5.0
    relay.unlock(Direction.B)
    assert len(_pulse_done(relay, sim, 2)) == 1
    assert not sim.is_on(1) and not sim.is_on(2)
    assert relay.health().state is DeviceState.UP
    assert relay.health().metrics["pulses"] == 2


def test_close_switches_a_pulse_in_progress_off(sim, relay):
    relay.unlock(Direction.A)
    until(lambda: sim.is_on(1))
    relay.close()
    until(lambda: not sim.is_on(1))
    relay.close()  # idempotent
    assert relay.health().state is DeviceState.DOWN


def test_without_a_channel_for_b_unlocking_b_is_refused(sim):
    driver = usb_relay.UsbRelayTurnstile("relay-2", sim.port)
    driver.open()
    try:
        with pytest.raises(PermanentError, match="direction B"):
            driver.unlock(Direction.B)
    finally:
        driver.close()


def test_dropped_and_silenced_commands_go_unnoticed_without_feedback(sim, relay):
    # The documented limit of a bare relay: the driver cannot tell the board ignored it.
    sim.drop = 1
    relay.unlock(Direction.A)
    relay.poll(0.3)
    assert sim.pulses(1) == [] and sim.drop == 0
    sim.silence = True
    relay.unlock(Direction.A)
    relay.poll(0.3)
    assert sim.pulses(1) == []
    assert relay.health().state is DeviceState.UP


def test_garbled_commands_are_rejected_by_the_board(sim, relay):
    sim.garble = True
    relay.unlock(Direction.A)
    relay.poll(0.3)
    until(lambda: sim.rejected >= 2)
    assert not sim.is_on(1)


def test_a_delayed_board_still_completes_the_pulse(sim, relay):
    sim.delay = 0.2
    relay.unlock(Direction.A)
    assert len(_pulse_done(relay, sim, 1)) == 1


def test_unplug_is_permanent_until_replugged_and_reopened(sim, relay):
    relay.unlock(Direction.A)
    sim.unplug()
    with pytest.raises(PermanentError):
        until(lambda: relay.poll(0.05) is None)
    assert relay.health().state is DeviceState.DOWN
    relay.close()
    with pytest.raises(PermanentError, match="no serial port"):
        relay.open()
    sim.replug()
    relay.open()
    relay.unlock(Direction.A)
    assert len(_pulse_done(relay, sim, 1)) == 1
