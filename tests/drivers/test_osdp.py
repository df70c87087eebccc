"""OSDP: packet framing against frames captured from libosdp, and the reader driver against
libosdp's simulated reader over a pty pair, plain and with the secure channel."""

from __future__ import annotations

import pytest

from drivers import osdp_frames
from drivers.base import DeviceState, PermanentError, Reader, ScanKind
from drivers.osdp_reader import OsdpReader
from drivers.protocol import FrameError
from drivers.sim.osdp_reader import OsdpReaderSim
from tests.drivers.waiting import until

KEY = "000102030405060708090a0b0c0d0e0f"


@pytest.mark.parametrize("frame, address, is_reply, name, data", [
    ("ff 53 65 09 00 04 61 00 d9 7a", 101, False, "ID", "00"),
    ("53 e5 08 00 06 40 b0 f0", 101, True, "ACK", ""),
    ("ff 53 65 08 00 06 60 02 f6", 101, False, "POLL", ""),
    ("53 e5 10 00 05 50 00 01 1a 00 bd 88 eb 80 bb 52", 101, True, "RAW", "00011a00bd88eb80"),
    ("ff 53 65 0c 00 06 68 00 05 1e 00 78 10", 101, False, "OUT", "00051e00"),
])
def test_captured_packets(frame, address, is_reply, name, data):
    packet = osdp_frames.parse(bytes.fromhex(frame))
    assert (packet.address, packet.is_reply, packet.name, packet.data.hex()) == \
        (address, is_reply, name, data)


@pytest.mark.parametrize("frame, problem", [
    ("53 e5 08 00 06 40 b0", "says 8 bytes, carries 7"),       # truncated
    ("53 e5 08 00 06 40 b0 f1", "CRC"),                        # bad CRC
    ("53 e5 09 00 06 40 b0 f0", "says 9"),                     # wrong length
    ("52 e5 08 00 06 40 b0 f0", "not 53"),                     # bad start
    ("53 e5 07 00 02 40 00", "checksum"),                      # bad checksum (CTRL bit 2 clear)
    ("53 e5", "too short"),
])
def test_broken_packets(frame, problem):
    with pytest.raises(FrameError, match=problem):
        osdp_frames.parse(bytes.fromhex(frame))


def test_checksum_mode_packets_parse():
    body = bytes.fromhex("53 e5 07 00 02 40")
    packet = osdp_frames.parse(body + bytes([osdp_frames.checksum(body)]))
    assert packet.name == "ACK" and packet.sequence == 2


def test_split_skips_marks_and_noise():
    ack = bytes.fromhex("53 e5 08 00 06 40 b0 f0")
    packets, skipped, rest = osdp_frames.split(b"\xff" + ack + b"\x00\x01" + ack + ack[:3])
    assert packets == [ack, ack] and skipped == 2 and rest == ack[:3]


@pytest.fixture
def sim(tmp_path):
    with OsdpReaderSim(link=str(tmp_path / "ttyOSDP")) as s:
        yield s


@pytest.fixture
def reader(sim):
    r = OsdpReader("osdp-1", sim.port, online_timeout_s=3.0)
    r.open()
    yield r
    r.close()


def test_a_tapped_card_is_one_rfid_scan(sim, reader):
    assert isinstance(reader, Reader)
    assert reader.read(0.1) is None
    sim.tap("04a1b2c3d4e5f6")
    scan = reader.read(5)
    assert (scan.kind, scan.data) == (ScanKind.RFID, "04A1B2C3D4E5F6")
    assert scan.fields == {"bits": 56, "format": "wiegand", "reader_no": 0}
    sim.tap("deadbeef")
    assert reader.read(5).data == "DEADBEEF"
    assert reader.health().state is DeviceState.UP and reader.health().metrics["online"] == 1


def test_what_the_reader_sends_is_valid_osdp_and_garbled_replies_are_not(sim, reader):
    until(lambda: len(sim.sent) >= 3)
    replies = [osdp_frames.parse(p) for p in osdp_frames.split(b"".join(sim.sent))[0]]
    assert {"PDID", "PDCAP", "ACK"} <= {r.name for r in replies}
    assert all(r.is_reply and r.address == 101 for r in replies)
    sim.garble = True
    count = len(sim.sent)
    until(lambda: len(sim.sent) > count)
    garbled = osdp_frames.split(b"".join(sim.sent[count:]))[0]
    with pytest.raises(FrameError):
        osdp_frames.parse(garbled[0])


def test_the_secure_channel(tmp_path):
    with OsdpReaderSim(link=str(tmp_path / "ttyOSDP-sc"), scbk=KEY) as sim:
        reader = OsdpReader("osdp-sc", sim.port, scbk=KEY, online_timeout_s=5.0)
        reader.open()
        try:
            assert reader.health().metrics["secure_channel"] == 1
            sim.tap("04112233445566")
            assert reader.read(5).data == "04112233445566"
        finally:
            reader.close()
        wrong = OsdpReader("osdp-sc", sim.port, scbk="ff" * 16, online_timeout_s=1.5)
        with pytest.raises(PermanentError, match="secure channel"):
            wrong.open()


def test_no_reader_at_the_address_is_permanent(sim):
    with pytest.raises(PermanentError, match="address 7"):
        OsdpReader("osdp-1", sim.port, address=7, online_timeout_s=1.0).open()


@pytest.mark.parametrize("fault", ["silence", "garble", "delay"])
def test_a_reader_that_stops_answering_goes_down_and_comes_back_on_reopen(sim, fault):
    reader = OsdpReader("osdp-1", sim.port, online_timeout_s=1.5)
    reader.open()
    setattr(sim, fault, 0.5 if fault == "delay" else True)
    with pytest.raises(PermanentError, match="offline"):
        until(lambda: reader.read(0.1) and False, timeout=30)
    assert reader.health().state is DeviceState.DOWN
    setattr(sim, fault, 0.0 if fault == "delay" else False)
    reader.open()
    sim.tap("0a0b0c0d")
    assert reader.read(5).data == "0A0B0C0D"
    reader.close()


def test_a_dropped_poll_reply_is_retried_and_the_link_stays_up(sim, reader):
    sim.drop = 1
    until(lambda: sim.drop == 0, what="a reply to be dropped")
    sim.tap("01020304")
    assert reader.read(5).data == "01020304"
    assert reader.health().state is DeviceState.UP


def test_unplug_and_replug(sim, reader):
    sim.unplug()
    with pytest.raises(PermanentError):
        until(lambda: reader.read(0.1) and False, timeout=30)
    assert reader.health().state is DeviceState.DOWN
    with pytest.raises(PermanentError, match="no serial port"):
        reader.open()
    sim.replug()
    reader.open()
    sim.tap("cafe0001")
    assert reader.read(5).data == "CAFE0001"
