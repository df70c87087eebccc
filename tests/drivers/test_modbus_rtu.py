"""Modbus RTU framing: the Waveshare board frames from the research, and broken ones."""

from __future__ import annotations

import pytest

from drivers import modbus_rtu as rtu
from drivers.protocol import FrameError


@pytest.mark.parametrize("frame, built", [
    ("01 05 00 00 ff 00 8c 3a", lambda: rtu.write_coil(1, 0, True)),    # relay 0 on
    ("01 05 00 00 00 00 cd ca", lambda: rtu.write_coil(1, 0, False)),   # relay 0 off
    ("01 05 00 01 ff 00 dd fa", lambda: rtu.write_coil(1, 1, True)),    # relay 1 on
    ("01 05 00 01 00 00 9c 0a", lambda: rtu.write_coil(1, 1, False)),   # relay 1 off
    ("01 05 02 00 00 07 8d b0", lambda: rtu.flash_on(1, 0, 7)),         # relay 0 flash 700 ms
    ("01 05 02 01 00 08 9c 74", lambda: rtu.flash_on(1, 1, 8)),         # relay 1 flash 800 ms
    ("01 01 00 00 00 08 3d cc", lambda: rtu.read_bits(1, rtu.READ_COILS, 0, 8)),
    ("01 02 00 00 00 08 79 cc", lambda: rtu.read_bits(1, rtu.READ_DISCRETE_INPUTS, 0, 8)),
])
def test_requests_match_the_documented_frames(frame, built):
    assert built() == bytes.fromhex(frame)
    request = rtu.parse_request(bytes.fromhex(frame))
    assert request.unit == 1 and request.function == bytes.fromhex(frame)[1]


def test_a_coil_reply_from_a_real_board_decodes():
    # The research's capture: coil 0 on after "relay 0 on".
    bits = rtu.parse_bits_reply(bytes.fromhex("01 01 01 01 90 48"), 1, rtu.READ_COILS, 8)
    assert bits == [True] + [False] * 7
    assert rtu.bits_reply(1, rtu.READ_COILS, bits) == bytes.fromhex("01 01 01 01 90 48")


def test_a_write_reply_is_the_echo():
    request = rtu.write_coil(1, 0, True)
    rtu.parse_echo_reply(request, request)
    with pytest.raises(FrameError, match="echo"):
        rtu.parse_echo_reply(rtu.write_coil(1, 0, False), request)


@pytest.mark.parametrize("frame, problem", [
    ("01 05 00 00 ff 00 8c", "CRC"),                # truncated: CRC no longer matches
    ("01 05 00 00 ff 00 8c 3b", "CRC"),             # bad CRC
    ("01 05", "too short"),                         # far too short
    ("ff ff ff", "too short"),                      # garbage
    ("01 05 00 00 ff 00 00 " + rtu.with_crc(bytes.fromhex("01 05 00 00 ff 00 00"))[-2:].hex(),
     "body of 7"),                                  # wrong length, valid CRC
])
def test_broken_requests_are_refused(frame, problem):
    with pytest.raises(FrameError, match=problem):
        rtu.parse_request(bytes.fromhex(frame))


@pytest.mark.parametrize("frame, problem", [
    (rtu.exception_reply(1, 0x02, rtu.ILLEGAL_ADDRESS), "exception 02"),
    (rtu.exception_reply(1, 0x02, rtu.ILLEGAL_FUNCTION), "exception 01"),
    (rtu.bits_reply(2, 0x02, [True] * 8), "unit 2"),
    (rtu.bits_reply(1, 0x01, [True] * 8), "function 01"),              # unexpected function
    (rtu.bits_reply(1, 0x02, [True] * 16), "does not hold 8"),         # wrong length
    (rtu.bits_reply(1, 0x02, [True] * 8)[:-1] + b"\x00", "CRC"),       # bad CRC
])
def test_broken_replies_are_refused(frame, problem):
    with pytest.raises(FrameError, match=problem):
        rtu.parse_bits_reply(frame, 1, rtu.READ_DISCRETE_INPUTS, 8)


def test_an_exception_reply_carries_its_code():
    with pytest.raises(rtu.ModbusException) as caught:
        rtu.parse_bits_reply(rtu.exception_reply(1, 2, 2), 1, 2, 8)
    assert caught.value.code == rtu.ILLEGAL_ADDRESS


@pytest.mark.parametrize("buffer, length", [
    ("01", None), ("01 05 00", 8), ("01 0f 00 00 00 0a", None), ("01 0f 00 00 00 0a 02", 11),
])
def test_request_length_is_known_from_the_first_bytes(buffer, length):
    assert rtu.request_length(bytes.fromhex(buffer)) == length
