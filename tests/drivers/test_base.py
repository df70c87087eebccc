"""The shared driver types: a pty pair carries bytes both ways unchanged; scans never show
personal data in their repr."""

from __future__ import annotations

import os
import select

import serial

from drivers.base import PtyPair, Scan, ScanKind


def _read(fd: int, n: int, timeout: float = 2.0) -> bytes:
    got = b""
    while len(got) < n:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"only {got!r} arrived"
        got += os.read(fd, n - len(got))
    return got


def test_pty_pair_is_a_raw_serial_line_both_ways():
    every_byte = bytes(range(256))
    with PtyPair() as pair:
        port = serial.Serial(pair.port, 115200, timeout=2)
        try:
            port.write(every_byte)
            assert _read(pair.fd, 256) == every_byte
            os.write(pair.fd, every_byte)
            assert port.read(256) == every_byte
        finally:
            port.close()


def test_an_id_card_scan_repr_hides_the_number_and_fields():
    scan = Scan(ScanKind.ID_CARD, "11010519491231002X", "idr-1", fields={"name": "张三"})
    text = repr(scan)
    assert "11010519491231002X" not in text and "张三" not in text
    assert "idr-1" in text


def test_a_qr_scan_repr_shows_a_shortened_code():
    code = "A" * 100 + "Z"
    text = repr(Scan(ScanKind.QR, code, "cam-1"))
    assert code not in text and text.count("A") < 20

