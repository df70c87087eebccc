"""OSDP packet framing, pure — for checking and logging what is on the line (libosdp does the
protocol itself).

``SOM 53 | ADDR (bit 7 set in replies) | LEN_L LEN_H (the whole packet) | CTRL | [SCB] |
CMD/REPLY | DATA | [MAC, 4 bytes] | CRC16 little-endian (or a one-byte checksum)``. CTRL bits
0–1 are the sequence number, bit 2 selects CRC over checksum, bit 3 says a security control
block follows. The CRC is CRC-16/AUG-CCITT (polynomial 0x1021, initial 0x1D0F, no
reflection); the checksum is the two's complement of the byte sum. A control panel may send
an 0xFF mark byte before a packet (OSDP 2.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.protocol import FrameError

SOM, MARK = 0x53, 0xFF
COMMANDS = {0x60: "POLL", 0x61: "ID", 0x62: "CAP", 0x64: "LSTAT", 0x65: "ISTAT",
            0x66: "OSTAT", 0x67: "RSTAT", 0x68: "OUT", 0x69: "LED", 0x6A: "BUZ", 0x6B: "TEXT",
            0x6E: "COMSET", 0x75: "KEYSET", 0x76: "CHLNG", 0x77: "SCRYPT", 0x80: "MFG"}
REPLIES = {0x40: "ACK", 0x41: "NAK", 0x45: "PDID", 0x46: "PDCAP", 0x48: "LSTATR",
           0x49: "ISTATR", 0x4A: "OSTATR", 0x50: "RAW", 0x51: "FMT", 0x53: "KEYPAD",
           0x76: "CCRYPT", 0x78: "RMAC_I", 0x79: "BUSY", 0x90: "MFGREP"}
MAC_TYPES = {0x15, 0x16, 0x17, 0x18}


def crc16(data: bytes) -> int:
    crc = 0x1D0F
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def checksum(data: bytes) -> int:
    return (-sum(data)) & 0xFF


@dataclass(frozen=True)
class Packet:
    address: int
    is_reply: bool
    sequence: int
    code: int
    data: bytes
    scb: bytes = b""

    @property
    def name(self) -> str:
        return (REPLIES if self.is_reply else COMMANDS).get(self.code, f"0x{self.code:02X}")


def parse(packet: bytes) -> Packet:
    if packet[:1] == bytes([MARK]):
        packet = packet[1:]
    if len(packet) < 7:
        raise FrameError(f"OSDP packet of {len(packet)} bytes is too short")
    if packet[0] != SOM:
        raise FrameError(f"OSDP packet starts with {packet[0]:02x}, not 53")
    length = int.from_bytes(packet[2:4], "little")
    if length != len(packet):
        raise FrameError(f"OSDP packet says {length} bytes, carries {len(packet)}")
    ctrl = packet[4]
    if ctrl & 0x04:
        body, (low, high) = packet[:-2], packet[-2:]
        if crc16(body) != low | high << 8:
            raise FrameError(f"OSDP CRC {low | high << 8:04x}, expected {crc16(body):04x}")
    else:
        body = packet[:-1]
        if checksum(body) != packet[-1]:
            raise FrameError(f"OSDP checksum {packet[-1]:02x}, expected {checksum(body):02x}")
    rest, scb = body[5:], b""
    if ctrl & 0x08:
        if not rest or rest[0] < 2 or rest[0] > len(rest) - 1:
            raise FrameError("OSDP security block has a bad length")
        scb, rest = rest[:rest[0]], rest[rest[0]:]
        if scb[1] in MAC_TYPES:
            if len(rest) < 5:
                raise FrameError("OSDP secure packet too short for its MAC")
            rest = rest[:-4]
    if not rest:
        raise FrameError("OSDP packet has no command or reply code")
    return Packet(packet[1] & 0x7F, bool(packet[1] & 0x80), ctrl & 0x03, rest[0], rest[1:],
                  scb)


def split(buffer: bytes) -> tuple[list[bytes], int, bytes]:
    """(packets by their LEN, bytes skipped, incomplete rest); mark bytes are skipped."""
    packets, skipped = [], 0
    while True:
        start = buffer.find(bytes([SOM]))
        if start < 0:
            return packets, skipped + len(buffer), b""
        skipped += len(buffer[:start].replace(bytes([MARK]), b""))
        buffer = buffer[start:]
        if len(buffer) < 4:
            return packets, skipped, buffer
        length = int.from_bytes(buffer[2:4], "little")
        if length < 7:
            skipped += 1
            buffer = buffer[1:]
            continue
        if len(buffer) < length:
            return packets, skipped, buffer
        packets.append(buffer[:length])
        buffer = buffer[length:]
