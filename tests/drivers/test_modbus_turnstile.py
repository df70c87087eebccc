"""The Modbus turnstile driver against the simulated relay/IO board and lane over a pty."""

from __future__ import annotations

import pytest

from drivers.base import DeviceState, Direction, PermanentError, TemporaryError, Turnstile
from drivers.base import TurnstileEventKind as Kind
from drivers.modbus_turnstile import ModbusTurnstile
from drivers.sim.modbus_board import HESITATES, NEVER, ModbusBoardSim
from tests.drivers.waiting import poll_until, until


@pytest.fixture
def board(tmp_path):
    with ModbusBoardSim(link=str(tmp_path / "ttyRS485")) as sim:
        yield sim


def make(board, **settings):
    settings = {"passage_timeout_s": 5.0, "reply_timeout_ms": 500, **settings}
    turnstile = ModbusTurnstile("lane-1-turnstile", board.port, **settings)
    turnstile.open()
    return turnstile


@pytest.fixture
def turnstile(board):
    t = make(board)
    yield t
    t.close()


def kinds(events):
    return [(e.kind, e.direction) for e in events]


def test_is_a_turnstile_with_feedback(turnstile):
    assert isinstance(turnstile, Turnstile) and turnstile.has_feedback
    turnstile.open()  # idempotent
    assert turnstile.poll(0.0) == []
    assert turnstile.health().state is DeviceState.UP


def test_unlock_is_a_pulse_the_board_times_even_if_the_appliance_dies(board, turnstile):
    board.person = NEVER
    turnstile.unlock(Direction.A)
    assert board.flashes == [(0, 500)]
    assert board.coils[0]
    turnstile.close()  # the appliance is gone; the board still ends the pulse
    until(lambda: not board.coils[0], what="the board to open its relay")


def test_a_person_who_passes_is_reported_in_their_direction(board, turnstile):
    turnstile.unlock(Direction.A)
    assert kinds(poll_until(turnstile, bool)) == [(Kind.PASSED, Direction.A)]
    turnstile.unlock(Direction.B)
    assert board.flashes[-1] == (1, 500)
    assert kinds(poll_until(turnstile, bool)) == [(Kind.PASSED, Direction.B)]
    assert turnstile.health().metrics["waiting_for_passage"] == 0


def test_nobody_coming_is_a_timeout(board):
    board.person = NEVER
    turnstile = make(board, passage_timeout_s=1.0)
    try:
        turnstile.unlock(Direction.A)
        assert kinds(poll_until(turnstile, bool)) == [(Kind.TIMEOUT, Direction.A)]
        assert turnstile.poll(0.2) == []  # reported once
    finally:
        turnstile.close()


def test_a_hesitating_person_times_out_then_passes_late(board):
    board.person, board.hesitate_s = HESITATES, 2.0
    turnstile = make(board, passage_timeout_s=1.0)
    try:
        turnstile.unlock(Direction.A)
        events = poll_until(turnstile, lambda ev: len(ev) >= 2)
        assert kinds(events) == [(Kind.TIMEOUT, Direction.A), (Kind.PASSED, Direction.A)]
    finally:
        turnstile.close()


def test_alarm_edges_both_ways(board, turnstile):
    assert turnstile.poll(0.0) == []
    board.alarm = True
    assert kinds(poll_until(turnstile, bool)) == [(Kind.ALARM_ON, None)]
    assert turnstile.health().metrics["alarm"] == 1
    board.alarm = False
    assert kinds(poll_until(turnstile, bool)) == [(Kind.ALARM_OFF, None)]


def test_an_alarm_already_on_at_open_is_reported(board):
    board.alarm = True
    turnstile = make(board)
    try:
        assert kinds(turnstile.poll(0.0)) == [(Kind.ALARM_ON, None)]
    finally:
        turnstile.close()


def test_garbled_replies_are_crc_errors_and_the_board_recovers(board, turnstile):
    board.garble = True
    with pytest.raises(TemporaryError, match="garbled"):
        turnstile.poll(0.0)
    health = turnstile.health()
    assert health.state is DeviceState.DEGRADED and health.metrics["crc_errors"] == 1
    board.garble = False
    assert turnstile.poll(0.0) == []
    assert turnstile.health().state is DeviceState.UP


def test_a_dropped_reply_is_one_timeout(board, turnstile):
    board.drop = 1
    with pytest.raises(TemporaryError, match="no reply"):
        turnstile.unlock(Direction.A)
    assert turnstile.health().metrics["timeouts"] == 1
    turnstile.unlock(Direction.A)
    assert len(board.flashes) == 2  # the board did act on the first one: pulses are safe


def test_a_slow_board_within_the_reply_time_is_fine_beyond_it_a_timeout(board, turnstile):
    board.delay = 0.1
    assert turnstile.poll(0.0) == []
    assert turnstile.health().metrics["last_rtt_ms"] >= 100
    board.delay = 1.0
    with pytest.raises(TemporaryError, match="no reply"):
        turnstile.poll(0.0)
    board.delay = 0.0
    until(lambda: _poll_ok(turnstile), what="the board answering again")


def _poll_ok(turnstile) -> bool:
    try:
        turnstile.poll(0.0)
    except TemporaryError:
        return False
    return True


def test_a_silent_board_goes_down_after_three_tries_and_comes_back_on_reopen(board):
    turnstile = make(board, reply_timeout_ms=200)
    board.silence = True
    for _ in range(2):
        with pytest.raises(TemporaryError):
            turnstile.poll(0.0)
    with pytest.raises(PermanentError, match="not answering"):
        turnstile.poll(0.0)
    assert turnstile.health().state is DeviceState.DOWN
    with pytest.raises(PermanentError, match="not open"):
        turnstile.poll(0.0)
    board.silence = False
    turnstile.open()
    assert turnstile.poll(0.0) == []
    turnstile.close()


def test_a_board_on_another_unit_address_never_answers_so_it_never_opens(board):
    with pytest.raises(PermanentError, match="no board answers as unit 7"):
        make(board, unit=7, reply_timeout_ms=200, down_after=2)
    assert board.requests == []


def test_a_port_with_no_board_answering_does_not_open_and_stays_down(board):
    board.silence = True
    turnstile = ModbusTurnstile("t", board.port, reply_timeout_ms=100)
    for _ in range(2):  # every retry ends where it began: down, never up in between
        with pytest.raises(PermanentError, match="no board answers as unit 1"):
            turnstile.open()
        assert turnstile.health().state is DeviceState.DOWN
        with pytest.raises(PermanentError, match="not open"):
            turnstile.poll(0.0)
    board.silence = False
    turnstile.open()
    assert turnstile.health().state is DeviceState.UP and turnstile.poll(0.0) == []
    turnstile.close()


def test_a_board_without_flash_on_is_a_clear_permanent_error(board):
    board.flash = False
    turnstile = make(board)
    try:
        with pytest.raises(PermanentError, match="flash-on"):
            turnstile.unlock(Direction.A)
        assert not board.coils[0]  # and nothing was held from software instead
    finally:
        turnstile.close()


def test_unplug_is_down_until_replugged_and_reopened(board, turnstile):
    board.person = NEVER
    turnstile.unlock(Direction.A)
    board.unplug()
    with pytest.raises(PermanentError):
        poll_until(turnstile, lambda ev: False, timeout=10)
    assert turnstile.health().state is DeviceState.DOWN
    with pytest.raises(PermanentError, match="no serial port"):
        turnstile.open()
    board.replug()
    board.person = "passes"
    turnstile.open()
    # The unlock pending when the board vanished is annulled: nobody is known to have passed.
    assert kinds(turnstile.poll(0.0)) == [(Kind.TIMEOUT, Direction.A)]
    turnstile.unlock(Direction.A)
    assert kinds(poll_until(turnstile, bool)) == [(Kind.PASSED, Direction.A)]


def test_a_port_that_does_not_exist_is_permanent(tmp_path):
    turnstile = ModbusTurnstile("t", str(tmp_path / "nothing"))
    with pytest.raises(PermanentError, match="no serial port"):
        turnstile.open()
    assert turnstile.health().state is DeviceState.DOWN


def test_an_annulled_unlock_survives_a_failed_poll(board, turnstile):
    board.person = NEVER
    turnstile.unlock(Direction.B)
    turnstile.close()
    turnstile.open()
    board.garble = True
    with pytest.raises(TemporaryError):
        turnstile.poll(0.0)
    board.garble = False
    assert kinds(turnstile.poll(0.0)) == [(Kind.TIMEOUT, Direction.B)]


def test_a_board_unplugged_mid_passage_comes_back_with_its_passage_contact_open(board, turnstile):
    board.person = "passes"
    board.pass_pulse_s = 30.0  # the contact is still closed when the power goes
    turnstile.unlock(Direction.A)
    until(lambda: board.inputs[board.pass_inputs["A"]])
    board.unplug()
    assert board.inputs[board.pass_inputs["A"]] is False
    board.replug()
    turnstile.close()
    turnstile.open()
    turnstile.poll(0.0)
    board.person = NEVER
    turnstile.unlock(Direction.A)
    # nobody passes after the replug: a stuck contact would have reported a passage
    events = kinds(poll_until(turnstile, bool, timeout=30))
    assert events == [(Kind.TIMEOUT, Direction.A)]
