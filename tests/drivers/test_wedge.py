"""Keyboard-wedge scanner: key events to text (synthetic evdev events, as a container has no
/dev/uinput), the kernel's event records over a pipe, and the device errors."""

from __future__ import annotations

import os

import pytest
from evdev import InputEvent
from evdev import ecodes as e

from drivers.base import DeviceState, PermanentError, Reader, ScanKind
from drivers.wedge import KeyDecoder, WedgeScanner, pack_event, parse_events

SHIFTED = set('~!@#$%^&*()_+{}|:"<>?') | set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
NAMES = {"-": "MINUS", ".": "DOT", "/": "SLASH", " ": "SPACE", ":": "SEMICOLON", "_": "MINUS",
         "?": "SLASH", "!": "1", "@": "2", "#": "3", "+": "EQUAL", "=": "EQUAL"}


def typed(text: str, start: float = 1000.0, step: float = 0.004, enter: bool = True):
    """The events a US-layout scanner sends for ``text``: shift around upper-case and
    symbols, a SYN after each key, Enter at the end."""
    t, events = start, []

    def key(code, value):
        nonlocal t
        sec, usec = int(t), int(round((t % 1) * 1_000_000))
        events.append(InputEvent(sec, usec, e.EV_MSC, e.MSC_SCAN, 0x70000 + code))
        events.append(InputEvent(sec, usec, e.EV_KEY, code, value))
        events.append(InputEvent(sec, usec, e.EV_SYN, e.SYN_REPORT, 0))
        t += step

    for ch in text:
        name = NAMES.get(ch, ch.upper())
        code = getattr(e, f"KEY_{name}")
        if ch in SHIFTED:
            key(e.KEY_LEFTSHIFT, 1)
        key(code, 1)
        key(code, 0)
        if ch in SHIFTED:
            key(e.KEY_LEFTSHIFT, 0)
    if enter:
        key(e.KEY_ENTER, 1)
        key(e.KEY_ENTER, 0)
    return events


def decode(events, **settings):
    decoder = KeyDecoder(**settings)
    return [text for ev in events if (text := decoder.feed(ev))], decoder


@pytest.mark.parametrize("text", [
    "TKT-42", "abc123", "TKT1.EVT42.SEC-B.ROW12.SEAT7", "A_b:c?!@#+=/ x",
])
def test_typed_text_comes_back(text):
    assert decode(typed(text))[0] == [text]


def test_two_scans_in_one_stream():
    events = typed("TKT-42") + typed("abc123", start=1001)
    assert decode(events)[0] == ["TKT-42", "abc123"]


def test_caps_lock_and_right_shift():
    events = [InputEvent(1, 0, e.EV_KEY, e.KEY_CAPSLOCK, 1),
              InputEvent(1, 0, e.EV_KEY, e.KEY_A, 1),
              InputEvent(1, 0, e.EV_KEY, e.KEY_RIGHTSHIFT, 1),
              InputEvent(1, 0, e.EV_KEY, e.KEY_B, 1),
              InputEvent(1, 0, e.EV_KEY, e.KEY_1, 1),
              InputEvent(1, 0, e.EV_KEY, e.KEY_RIGHTSHIFT, 0),
              InputEvent(1, 0, e.EV_KEY, e.KEY_KPENTER, 1)]
    assert decode(events)[0] == ["Ab!"]


def test_a_slow_stream_is_not_a_scan():
    events = typed("HUMAN", step=0.5, enter=False) + typed("OK", start=1010)
    texts, decoder = decode(events)
    assert texts == ["OK"] and decoder.discarded["slow"] >= 1


def test_repeats_unmapped_keys_and_an_empty_enter():
    events = [InputEvent(1, 0, e.EV_KEY, e.KEY_A, 1), InputEvent(1, 0, e.EV_KEY, e.KEY_A, 2),
              InputEvent(1, 0, e.EV_KEY, e.KEY_F5, 1), InputEvent(1, 0, e.EV_KEY, e.KEY_ENTER, 1),
              InputEvent(1, 0, e.EV_KEY, e.KEY_ENTER, 1)]
    texts, decoder = decode(events)
    assert texts == ["a"] and decoder.discarded["unmapped_keys"] == 1


def test_an_overlong_scan_is_discarded():
    texts, decoder = decode(typed("X" * 20) + typed("OK", start=1010), max_length=10)
    assert texts == ["OK"] and decoder.discarded["overlong"] == 1


def test_kernel_records_round_trip_and_a_partial_one_waits():
    data = pack_event(5, 6, e.EV_KEY, e.KEY_A, 1) + pack_event(5, 7, e.EV_SYN, 0, 0)
    events, rest = parse_events(data + data[:10])
    assert [(ev.sec, ev.usec, ev.type, ev.code, ev.value) for ev in events] == \
        [(5, 6, e.EV_KEY, e.KEY_A, 1), (5, 7, e.EV_SYN, 0, 0)]
    assert rest == data[:10]


def _records(events) -> bytes:
    return b"".join(pack_event(ev.sec, ev.usec, ev.type, ev.code, ev.value) for ev in events)


def test_the_reader_over_a_stream_of_kernel_records():
    r, w = os.pipe()
    scanner = WedgeScanner.over_fd("wedge-1", r)
    try:
        assert isinstance(scanner, Reader)
        assert scanner.read(0.05) is None
        data = _records(typed("TKT-42") + typed("abc123", start=1001))
        os.write(w, data[:100])  # records split across reads
        os.write(w, data[100:])
        first = scanner.read(5)
        assert (first.kind, first.data) == (ScanKind.BARCODE, "TKT-42")
        assert scanner.read(5).data == "abc123"
        os.close(w)  # the device goes away
        with pytest.raises(PermanentError, match="gone"):
            scanner.read(5)
        assert scanner.health().state is DeviceState.DOWN
    finally:
        os.close(r)


def test_a_missing_device_is_a_clear_permanent_error(tmp_path):
    scanner = WedgeScanner("wedge-1", str(tmp_path / "event99"))
    with pytest.raises(PermanentError, match="no input device at"):
        scanner.open()
    assert scanner.health().state is DeviceState.DOWN
    with pytest.raises(PermanentError, match="not open"):
        scanner.read(0)


def test_something_that_is_not_an_input_device_is_refused(tmp_path):
    path = tmp_path / "not-a-device"
    path.write_bytes(b"")
    with pytest.raises(PermanentError, match="not an input device"):
        WedgeScanner("wedge-1", str(path)).open()
