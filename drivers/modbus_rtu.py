"""Modbus RTU framing, pure: CRC-16/MODBUS, the few requests a relay/IO board needs, and the
replies. The driver talks through pymodbus; the board simulator and the tests use these.

Frames: ``unit | function | data | CRC16 (little-endian)``. Functions used by a lane board:
FC01 read coils, FC02 read discrete inputs, FC05 write single coil (``FF 00`` on, ``00 00``
off). Waveshare's relay boards add a *flash* on FC05: writing ``n`` to coil address
``0x0200 + channel`` closes that relay for ``n × 100 ms`` and the board opens it again by
itself (``01 05 02 00 00 07 8D B0`` = relay 0 for 700 ms). An exception reply sets bit 7 of
the function code and carries one exception code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from drivers.protocol import FrameError

READ_COILS = 0x01
READ_DISCRETE_INPUTS = 0x02
WRITE_SINGLE_COIL = 0x05
WRITE_MULTIPLE_COILS = 0x0F
WRITE_MULTIPLE_REGISTERS = 0x10
FLASH_BASE = 0x0200  # Waveshare: FC05 to 0x0200 + channel = flash on, value × 100 ms
COIL_ON, COIL_OFF = 0xFF00, 0x0000

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE = 0x01, 0x02, 0x03


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<H", crc16(body))


def check_crc(frame: bytes) -> bytes:
    """The frame without its CRC; FrameError if too short or the CRC does not match."""
    if len(frame) < 4:
        raise FrameError(f"modbus frame of {len(frame)} bytes is too short")
    body, (crc,) = frame[:-2], struct.unpack("<H", frame[-2:])
    if crc16(body) != crc:
        raise FrameError(f"modbus CRC {crc:04x}, expected {crc16(body):04x}")
    return body


# --- requests --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Request:
    unit: int
    function: int
    address: int
    value: int  # the count for reads, the written value for FC05
    payload: bytes = b""  # FC0F/FC10: the bytes after the byte count


def read_bits(unit: int, function: int, address: int, count: int) -> bytes:
    return with_crc(struct.pack(">BBHH", unit, function, address, count))


def write_coil(unit: int, address: int, on: bool) -> bytes:
    return with_crc(struct.pack(">BBHH", unit, WRITE_SINGLE_COIL, address,
                                COIL_ON if on else COIL_OFF))


def flash_on(unit: int, channel: int, ticks: int) -> bytes:
    if not 1 <= ticks <= 0x7FFF:
        raise ValueError(f"flash of {ticks} × 100 ms is out of range")
    return with_crc(struct.pack(">BBHH", unit, WRITE_SINGLE_COIL, FLASH_BASE + channel, ticks))


def request_length(buffer: bytes) -> int | None:
    """Bytes the request at the start of ``buffer`` takes, or None while it is incomplete.
    Functions a board does not know are assumed to have the common 8-byte shape."""
    if len(buffer) < 2:
        return None
    if buffer[1] in (WRITE_MULTIPLE_COILS, WRITE_MULTIPLE_REGISTERS):
        if len(buffer) < 7:
            return None
        return 9 + buffer[6]
    return 8


def parse_request(frame: bytes) -> Request:
    body = check_crc(frame)
    unit, function = body[0], body[1]
    if function in (WRITE_MULTIPLE_COILS, WRITE_MULTIPLE_REGISTERS):
        if len(body) < 7 or len(body) != 7 + body[6]:
            raise FrameError("modbus multiple-write request has the wrong length")
        address, count = struct.unpack(">HH", body[2:6])
        return Request(unit, function, address, count, body[7:])
    if len(body) != 6:
        raise FrameError(f"modbus request body of {len(body)} bytes, expected 6")
    address, value = struct.unpack(">HH", body[2:6])
    return Request(unit, function, address, value)


# --- replies ---------------------------------------------------------------------------------

def bits_reply(unit: int, function: int, bits: list[bool]) -> bytes:
    packed = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            packed[i // 8] |= 1 << (i % 8)
    return with_crc(bytes([unit, function, len(packed)]) + bytes(packed))


def echo_reply(request: Request) -> bytes:
    return with_crc(struct.pack(">BBHH", request.unit, request.function, request.address,
                                request.value))


def exception_reply(unit: int, function: int, code: int) -> bytes:
    return with_crc(bytes([unit, function | 0x80, code]))


class ModbusException(FrameError):
    """The board answered with an exception code (illegal function, address or value)."""

    def __init__(self, function: int, code: int):
        super().__init__(f"board refused function {function:02x} with exception {code:02x}")
        self.function, self.code = function, code


def parse_bits_reply(frame: bytes, unit: int, function: int, count: int) -> list[bool]:
    body = check_crc(frame)
    _check_head(body, unit, function)
    if len(body) < 3 or len(body) != 3 + body[2] or body[2] != (count + 7) // 8:
        raise FrameError(f"modbus bit reply of {len(body)} bytes does not hold {count} bits")
    return [bool(body[3 + i // 8] >> (i % 8) & 1) for i in range(count)]


def parse_echo_reply(frame: bytes, request: bytes) -> None:
    body = check_crc(frame)
    _check_head(body, request[0], request[1])
    if frame != request:
        raise FrameError("modbus write reply does not echo the request")


def _check_head(body: bytes, unit: int, function: int) -> None:
    if body[0] != unit:
        raise FrameError(f"modbus reply from unit {body[0]}, expected {unit}")
    if body[1] == function | 0x80:
        if len(body) != 3:
            raise FrameError("modbus exception reply has the wrong length")
        raise ModbusException(function, body[2])
    if body[1] != function:
        raise FrameError(f"modbus reply function {body[1]:02x}, expected {function:02x}")
