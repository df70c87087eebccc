"""ID card reader: the SAM protocol's frames, the text block, and the driver against the
simulated reader over a pty pair."""

from __future__ import annotations

import logging

import pytest

from drivers import idcard as proto
from drivers.base import DeviceState, PermanentError, Reader, ScanKind, TemporaryError
from drivers.protocol import FrameError
from drivers.sim.idcard import SAMPLE_CARD, IdCardReaderSim


@pytest.mark.parametrize("cmd, frame", [
    (proto.RESET_SAM, "aa aa aa 96 69 00 03 10 ff ec"),
    (proto.SAM_STATUS, "aa aa aa 96 69 00 03 11 ff ed"),
    (proto.READ_SAM_ID, "aa aa aa 96 69 00 03 12 ff ee"),
    (proto.FIND_CARD, "aa aa aa 96 69 00 03 20 01 22"),
    (proto.SELECT_CARD, "aa aa aa 96 69 00 03 20 02 21"),
    (proto.READ_TEXT_PHOTO, "aa aa aa 96 69 00 03 30 01 32"),
])
def test_commands_match_the_documented_frames(cmd, frame):
    assert proto.command(cmd) == bytes.fromhex(frame)
    assert proto.decode_command(bytes.fromhex(frame)) == (cmd, b"")


@pytest.mark.parametrize("frame, sw3, data_len", [
    ("aa aa aa 96 69 00 08 00 00 9f 00 00 00 00 97", 0x9F, 4),   # card found
    ("aa aa aa 96 69 00 04 00 00 80 84", 0x80, 0),               # no card
    ("aa aa aa 96 69 00 0c 00 00 90 00 00 00 00 00 00 00 00 9c", 0x90, 8),  # selected
    ("aa aa aa 96 69 00 04 00 00 81 85", 0x81, 0),               # select failed
    ("aa aa aa 96 69 00 04 00 00 41 45", 0x41, 0),               # read failed
])
def test_replies_from_the_documented_frames(frame, sw3, data_len):
    reply = proto.decode_reply(bytes.fromhex(frame))
    assert (reply.sw3, len(reply.data)) == (sw3, data_len)
    assert proto.reply(sw3, reply.data) == bytes.fromhex(frame)


def test_a_full_read_reply_is_1295_bytes_with_the_documented_header():
    data = b"\x01\x00\x04\x00" + proto.build_text(SAMPLE_CARD) + bytes(1024)
    frame = proto.reply(proto.OK, data)
    assert len(frame) == 1295
    assert frame[:14] == bytes.fromhex("aa aa aa 96 69 05 08 00 00 90 01 00 04 00")
    text, photo = proto.parse_read(proto.decode_reply(frame).data)
    assert text == SAMPLE_CARD and photo == bytes(1024)


@pytest.mark.parametrize("frame, problem", [
    ("aa aa aa 96 69 00 04 00 00 80", "too short"),                      # truncated
    ("aa aa aa 96 69 00 04 00 00 80 85", "checksum 85, expected 84"),    # bad checksum
    ("aa aa aa 96 69 00 05 00 00 80 84", "says 5 bytes"),                # wrong length
    ("aa aa 96 69 00 04 00 00 80 84", "does not start"),                 # bad preamble
    ("aa aa aa 96 69 00 01 01", "too short"),                            # no status words
])
def test_broken_replies_are_refused(frame, problem):
    with pytest.raises(FrameError, match=problem):
        proto.decode_reply(bytes.fromhex(frame))


def test_split_finds_frames_among_garbage_and_keeps_a_partial_preamble():
    find = bytes.fromhex("aa aa aa 96 69 00 04 00 00 80 84")
    frames, garbage, rest = proto.split(b"\x00\xff" + find + b"\x13" + find + b"\xaa\xaa")
    assert frames == [find, find] and garbage == 3 and rest == b"\xaa\xaa"


def test_the_text_block_parses_into_fields():
    text = proto.parse_text(proto.build_text(SAMPLE_CARD))
    assert text == SAMPLE_CARD
    fields = proto.card_fields(text, b"wlt")
    assert (fields["sex_label"], fields["nation_label"]) == ("男", "汉")
    assert fields["id_number_valid"] is True and fields["photo_wlt"] == b"wlt"


@pytest.mark.parametrize("number, valid", [
    ("11010519491231002X", True), ("11010519491231002x", True), ("110105194912310021", False),
    ("1101051949123100", False), ("A1010519491231002X", False),
])
def test_id_number_check_digit(number, valid):
    assert proto.id_number_valid(number) is valid


@pytest.mark.parametrize("block, problem", [
    (bytes(255), "255 bytes"), (b"\x00\xd8" * 128, "not UCS-2"),
])
def test_broken_text_blocks_are_refused(block, problem):
    with pytest.raises(FrameError, match=problem):
        proto.parse_text(block)


def test_a_read_reply_with_wrong_block_lengths_is_refused():
    with pytest.raises(FrameError, match="does not hold"):
        proto.parse_read(b"\x01\x00\x04\x00" + bytes(256))


@pytest.fixture
def sim(tmp_path):
    with IdCardReaderSim(link=str(tmp_path / "ttyIDR")) as s:
        yield s


@pytest.fixture
def reader(sim):
    r = proto.IdCardReader("idr-1", sim.port, reply_timeout_ms=800, poll_ms=50)
    r.open()
    yield r
    r.close()


def test_no_card_is_no_scan(sim, reader):
    assert isinstance(reader, Reader)
    assert reader.read(0.3) is None
    assert reader.health().state is DeviceState.UP


def test_a_presented_card_is_one_scan_with_its_fields(sim, reader, caplog):
    caplog.set_level(logging.DEBUG)
    sim.present()
    scan = reader.read(5)
    assert scan.kind is ScanKind.ID_CARD and scan.data == "11010519491231002X"
    assert scan.fields["name"] == "张三" and scan.fields["address"] == SAMPLE_CARD["address"]
    assert scan.fields["valid_to"] == "长期" and scan.fields["photo_wlt"] == sim.photo
    assert sim.commands[-3:] == [proto.FIND_CARD, proto.SELECT_CARD, proto.READ_TEXT_PHOTO]
    # The same card lying on the reader is not read twice; presented anew, it is.
    assert reader.read(0.3) is None
    sim.present()
    assert reader.read(5).data == "11010519491231002X"
    assert "张三" not in caplog.text and "11010519491231002X" not in caplog.text


def test_a_card_whose_number_fails_the_check_digit_is_flagged(sim, reader):
    sim.present({**SAMPLE_CARD, "id_number": "110105194912310021"})
    assert reader.read(5).fields["id_number_valid"] is False


def test_a_card_pulled_away_mid_read_is_temporary(sim, reader):
    sim.present()
    sim.pull_after_find = True
    with pytest.raises(TemporaryError, match="select failed"):
        reader.read(5)
    assert reader.read(0.2) is None


def test_the_sam_id(sim, reader):
    assert reader.sam_id() == "05.01-333-0094056303-0123456789"


def test_a_bad_checksum_is_temporary_then_the_card_reads(sim, reader):
    sim.present()
    sim.garble = True
    with pytest.raises(TemporaryError, match="checksum"):
        reader.read(5)
    assert reader.health().state is DeviceState.DEGRADED
    assert reader.health().metrics["checksum_errors"] == 1
    sim.garble = False
    assert reader.read(5).data == "11010519491231002X"
    assert reader.health().state is DeviceState.UP


def test_a_dropped_reply_is_a_timeout(sim, reader):
    sim.drop = 1
    with pytest.raises(TemporaryError, match="no reply"):
        reader.read(1)
    assert reader.health().metrics["timeouts"] == 1
    assert reader.read(0.2) is None


def test_slow_replies_within_the_reply_time_still_read(sim, reader):
    sim.present()
    sim.delay, sim.read_delay = 0.1, 0.3
    assert reader.read(5).data == "11010519491231002X"
    sim.read_delay = 2.0
    sim.present()
    with pytest.raises(TemporaryError, match="no reply to 30 01"):
        reader.read(5)


def test_a_silent_reader_goes_down_and_works_after_reopen(sim, reader):
    sim.silence = True
    for _ in range(2):
        with pytest.raises(TemporaryError):
            reader.read(1)
    with pytest.raises(PermanentError, match="not answering"):
        reader.read(1)
    assert reader.health().state is DeviceState.DOWN
    sim.silence = False
    reader.open()
    assert reader.read(0.2) is None


def test_unplug_and_replug(sim, reader):
    sim.unplug()
    with pytest.raises(PermanentError):
        for _ in range(10):
            reader.read(0.3)
    assert reader.health().state is DeviceState.DOWN
    with pytest.raises(PermanentError, match="no serial port"):
        reader.open()
    sim.replug()
    reader.open()
    sim.present()
    assert reader.read(5).data == "11010519491231002X"
