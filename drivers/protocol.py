"""Pieces the pure protocol layers share: the error a malformed frame raises, and checksums."""

from __future__ import annotations


class FrameError(ValueError):
    """Bytes that are not a valid frame of the protocol (truncated, wrong length, bad
    checksum, unknown code). The driver counts it and treats the exchange as failed."""


def xor8(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def sum8(data: bytes) -> int:
    return sum(data) & 0xFF


def hexdump(data: bytes, limit: int = 32) -> str:
    """For logs of frames that carry no personal data (relay and turnstile frames only)."""
    text = data[:limit].hex(" ")
    return text + (" …" if len(data) > limit else "")
