"""Properties of the protocol layers over arbitrary input: what is encoded decodes back,
framing does not depend on how the bytes are chunked, and no input makes a parser raise
anything but FrameError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import idcard, modbus_rtu, onetech_turnstile, usb_relay
from drivers.base import Direction
from drivers.protocol import FrameError
from drivers.serial_scanner import LineSplitter
from drivers.wedge import KeyDecoder, pack_event, parse_events
from tests.drivers.test_wedge import typed


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


@given(st.binary(min_size=2, max_size=64), st.data())
def test_a_crc_always_verifies_and_any_flipped_bit_is_caught(body, data):
    frame = modbus_rtu.with_crc(body)
    assert modbus_rtu.check_crc(frame) == body
    at = data.draw(st.integers(0, len(frame) - 1))
    bit = data.draw(st.integers(0, 7))
    broken = frame[:at] + bytes([frame[at] ^ (1 << bit)]) + frame[at + 1:]
    with pytest.raises(FrameError):
        modbus_rtu.check_crc(broken)


@given(st.binary(max_size=40))
def test_parsers_raise_only_frame_errors(data):
    outcomes = []
    for parse in (modbus_rtu.parse_request, idcard.decode_reply, idcard.decode_command,
                  onetech_turnstile.decode, usb_relay.decode):
        try:
            outcomes.append(parse(data))
        except FrameError as exc:
            outcomes.append(exc)
    assert len(outcomes) == 5 and all(o is not None for o in outcomes)


@given(st.lists(st.tuples(st.sampled_from([0x81, 0x44]), st.sampled_from(list(Direction))),
                max_size=6),
       st.lists(st.binary(max_size=5).filter(lambda b: 0xFE not in b), max_size=6))
def test_onetech_frames_survive_garbage_between_them(messages, noise):
    stream, expected = b"", []
    for i, (code, direction) in enumerate(messages):
        stream += (noise[i] if i < len(noise) else b"") + onetech_turnstile.encode(code,
                                                                                 direction)
        expected.append(onetech_turnstile.encode(code, direction))
    frames, _, rest = onetech_turnstile.split(stream)
    assert frames == expected and rest == b""


@given(st.lists(st.binary(max_size=300), max_size=4), st.lists(st.integers(0, 2000)))
def test_idcard_frames_split_the_same_in_any_chunking(payloads, cuts):
    frames = [idcard.reply(0x90, p) for p in payloads]
    buffer, got = b"", []
    for chunk in _chunks(b"".join(frames), cuts):
        found, garbage, buffer = idcard.split(buffer + chunk)
        assert garbage == 0
        got += found
    assert got == frames and [idcard.decode_reply(f).data for f in got] == payloads


@given(st.lists(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E)),
                max_size=5),
       st.sampled_from([b"\r", b"\n", b"\r\n"]), st.lists(st.integers(0, 500)))
def test_lines_come_out_the_same_in_any_chunking(lines, end, cuts):
    data = b"".join(line.encode() + end for line in lines)
    splitter = LineSplitter()
    got = [item for chunk in _chunks(data, cuts) for item in splitter.feed(chunk)]
    assert got == [line for line in lines if line]


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "-._/:?!@#+=", min_size=1, max_size=60),
       st.lists(st.integers(0, 5000)))
def test_wedge_text_survives_kernel_records_in_any_chunking(text, cuts):
    data = b"".join(pack_event(ev.sec, ev.usec, ev.type, ev.code, ev.value)
                    for ev in typed(text))
    decoder, rest, got = KeyDecoder(), b"", []
    for chunk in _chunks(data, cuts):
        events, rest = parse_events(rest + chunk)
        got += [t for ev in events if (t := decoder.feed(ev))]
    assert got == [text]
