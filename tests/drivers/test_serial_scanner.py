"""Serial barcode scanner: lines out of any chunking, and the driver over a pty pair."""

from __future__ import annotations

import pytest

from drivers.base import DeviceState, PermanentError, Reader, ScanKind, TemporaryError
from drivers.serial_scanner import LineError, LineSplitter, SerialScanner
from drivers.sim.serial_scanner import SerialScannerSim

CODE = "TKT1.EVT42.SEC-B.ROW12.SEAT7"


@pytest.mark.parametrize("chunks, expected", [
    ([b"ABC\r"], ["ABC"]),                                 # CR
    ([b"ABC\n"], ["ABC"]),                                 # LF
    ([b"ABC\r\n"], ["ABC"]),                               # CR LF
    ([b"ABC\r", b"\nDEF\r\n"], ["ABC", "DEF"]),            # CR LF split across reads
    ([b"AB", b"C\r\n\r\nDEF\n"], ["ABC", "DEF"]),          # split line, empty line between
    ([b"\x00 ABC \r\n"], ["ABC"]),                         # padding trimmed
    ([b"ABC"], []),                                        # not terminated yet
    ([b"\xe7\xa5\xa8\r"], ["票"]),                          # UTF-8 text
    ([b"\xe7\xa5", b"\xa8\r"], ["票"]),                     # split inside a character
])
def test_lines(chunks, expected):
    splitter = LineSplitter()
    got = [line for chunk in chunks for line in splitter.feed(chunk)]
    assert got == expected


@pytest.mark.parametrize("data, kind", [
    (b"AB\xffCD\r\n", "garbage"),          # not UTF-8
    (b"AB\x1bCD\r\n", "garbage"),          # control character
    (b"X" * 20 + b"\r\n", "overlong"),     # beyond max_line
])
def test_broken_lines_are_errors_and_the_next_line_is_fine(data, kind):
    splitter = LineSplitter(max_line=16)
    got = splitter.feed(data + b"OK\r\n")
    assert isinstance(got[0], LineError) and got[0].kind == kind
    assert got[1:] == ["OK"]


@pytest.fixture
def sim(tmp_path):
    with SerialScannerSim(link=str(tmp_path / "ttyACM0")) as s:
        yield s


@pytest.fixture
def scanner(sim):
    s = SerialScanner("scanner-1", sim.port, max_line=64)
    s.open()
    yield s
    s.close()


def test_each_line_is_one_barcode_scan(sim, scanner):
    assert isinstance(scanner, Reader)
    assert scanner.read(0.1) is None
    sim.scan(CODE)
    sim.scan("SECOND", terminator=b"\n")
    first = scanner.read(5)
    assert (first.kind, first.data, first.device_id) == (ScanKind.BARCODE, CODE, "scanner-1")
    assert scanner.read(5).data == "SECOND"
    assert scanner.health().state is DeviceState.UP and scanner.health().metrics["scans"] == 2


def test_line_noise_and_garbled_scans_are_temporary_and_never_scans(sim, scanner):
    sim.send_raw(b"\x00\x13\x80\xfe\r\n")
    with pytest.raises(TemporaryError):
        scanner.read(5)
    sim.garble = True
    sim.scan(CODE)
    with pytest.raises(TemporaryError, match="not UTF-8"):
        scanner.read(5)
    assert scanner.health().state is DeviceState.DEGRADED
    sim.garble = False
    sim.scan(CODE)
    assert scanner.read(5).data == CODE
    assert scanner.health().state is DeviceState.UP


def test_an_overlong_line_is_refused(sim, scanner):
    sim.scan("Z" * 100)
    with pytest.raises(TemporaryError, match="longer than 64"):
        scanner.read(5)
    assert scanner.health().metrics["overlong"] == 1


def test_dropped_silenced_and_slow_scans(sim, scanner):
    sim.drop = 1
    sim.scan("LOST")
    sim.silence = True
    sim.scan("SILENT")
    sim.silence = False
    sim.delay = 0.2
    sim.scan("LATE")
    assert scanner.read(5).data == "LATE"
    assert scanner.read(0.1) is None


def test_unplug_and_replug(sim, scanner):
    sim.unplug()
    with pytest.raises(PermanentError):
        scanner.read(5)
    assert scanner.health().state is DeviceState.DOWN
    with pytest.raises(PermanentError, match="not open"):
        scanner.read(0)
    with pytest.raises(PermanentError, match="no serial port"):
        scanner.open()
    sim.replug()
    scanner.open()
    sim.scan(CODE)
    assert scanner.read(5).data == CODE
