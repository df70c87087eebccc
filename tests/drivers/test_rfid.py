"""The PC/SC RFID reader against a real pcscd, vsmartcard's virtual reader and a virtual card
of ours; the UID protocol and the card's answers as tables."""

from __future__ import annotations

import time

import pytest

from drivers.base import DeviceState, PermanentError, Reader, ScanKind, TemporaryError
from drivers.rfid import (
    PcscReader,
    RfidSettings,
    UidError,
    get_uid_apdu,
    parse_uid_response,
    wait_slot,
)
from drivers.sim.vcard import VirtualCard, answer, storage_card_atr

UID7 = "04A1B2C3D4E5F6"


# --- protocol tables ------------------------------------------------------------------------------

@pytest.mark.parametrize("response,uid", [
    ("04A1B2C3D4E5F6 9000", "04A1B2C3D4E5F6"),
    ("deadbeef9000", "DEADBEEF"),
    ("0102030405060708090A 9000", "0102030405060708090A"),
])
def test_uid_from_a_get_data_response(response, uid):
    assert parse_uid_response(bytes.fromhex(response.replace(" ", ""))) == uid


@pytest.mark.parametrize("response,message,retry_le,final", [
    ("", "no answer", None, False),
    ("90", "garbled", None, False),
    ("9000", "0 bytes", None, False),
    ("0102039000", "3 bytes", None, False),
    ("6C07", "Le=7", 7, False),
    ("6300", "6300", None, False),
    ("6A81", "does not give a UID", None, True),
    ("6E00", "class not supported", None, True),
    ("04A1B2C36F00", "6F00", None, False),
])
def test_get_data_responses_without_a_uid(response, message, retry_le, final):
    with pytest.raises(UidError) as exc:
        parse_uid_response(bytes.fromhex(response))
    assert message in str(exc.value)
    assert exc.value.retry_le == retry_le and exc.value.final == final


def test_get_data_apdu():
    assert get_uid_apdu() == [0xFF, 0xCA, 0x00, 0x00, 0x00]
    assert get_uid_apdu(7) == [0xFF, 0xCA, 0x00, 0x00, 0x07]


@pytest.mark.parametrize("apdu,reply", [
    ("FFCA000000", "04A1B2C3D4E5F69000"),
    ("FFCA0000", "04A1B2C3D4E5F69000"),
    ("FFCA000007", "04A1B2C3D4E5F69000"),
    ("FFCA000004", "6C07"),
    ("FFCA010000", "6A81"),
    ("FFB0000010", "6D00"),
    ("00A4040000", "6E00"),
    ("FF", "6700"),
])
def test_the_virtual_cards_answers(apdu, reply):
    assert answer(bytes.fromhex(apdu), bytes.fromhex(UID7)).hex().upper() == reply


@pytest.mark.parametrize("card", ["mifare_classic_1k", "mifare_classic_4k", "mifare_ultralight"])
def test_storage_card_atrs_carry_a_valid_check_byte(card):
    atr = storage_card_atr(card)
    check = 0
    for b in atr[1:]:
        check ^= b
    assert check == 0 and atr[:2] == b"\x3B\x8F" and len(atr) == 20
    assert storage_card_atr().hex().upper() == "3B8F8001804F0CA000000306030001000000006A"


def test_bad_rfid_settings():
    with pytest.raises(PermanentError) as exc:
        PcscReader.from_config("rf-1", {"reader": "x", "retry": 1})
    assert "unknown setting(s) retry" in str(exc.value)
    with pytest.raises(PermanentError):
        PcscReader.from_config("rf-1", {"retries": 99})


# --- against pcscd --------------------------------------------------------------------------------

@pytest.fixture
def reader(pcscd):
    r = PcscReader("rf-1", RfidSettings(reader=pcscd.readers[0]))
    r.open()
    yield r
    r.close()


@pytest.fixture
def card_factory(pcscd):
    cards = []

    def make(uid=UID7, slot=0, **kw):
        card = VirtualCard(pcscd.slot_port(slot), uid, **kw)
        cards.append((card, slot))
        return card

    yield make
    for card, slot in cards:
        if card.inserted:
            card.remove()
            assert wait_slot(pcscd.readers[slot], present=False)


def tap_out(card, pcscd, slot=0):
    card.remove()
    assert wait_slot(pcscd.readers[slot], present=False)


def test_a_tap_is_one_scan_with_the_uid(pcscd, reader, card_factory):
    assert isinstance(reader, Reader)
    assert reader.read(0.2) is None
    card = card_factory().insert()
    scan = reader.read(15)
    assert scan is not None and scan.kind is ScanKind.RFID and scan.data == UID7
    assert scan.device_id == "rf-1"
    assert card.apdus == [bytes.fromhex("FFCA000000")]
    assert reader.read(1.0) is None           # still on the reader: no second scan
    tap_out(card, pcscd)
    assert reader.read(1.0) is None
    card.insert()
    again = reader.read(15)
    assert again is not None and again.data == UID7
    health = reader.health()
    assert health.state is DeviceState.UP
    assert health.metrics["cards_read"] == 2 and health.metrics["insertions"] == 2
    assert health.metrics["removals"] >= 1 and health.metrics["reader"] == pcscd.readers[0]


@pytest.mark.parametrize("uid", ["DEADBEEF", "0102030405060708090A"])
def test_uids_of_every_size(pcscd, reader, card_factory, uid):
    card_factory(uid).insert()
    scan = reader.read(15)
    assert scan is not None and scan.data == uid


def test_the_configured_reader_is_the_one_read(pcscd, card_factory):
    second = PcscReader("rf-2", RfidSettings(reader="00 01"))
    second.open()
    try:
        assert second.reader_name == pcscd.readers[1]
        card_factory("11223344", slot=0).insert()
        card_factory("55667788", slot=1).insert()
        scan = second.read(15)
        assert scan is not None and scan.data == "55667788"
        assert second.read(1.0) is None
    finally:
        second.close()


def test_a_reader_that_is_not_there(pcscd):
    r = PcscReader("rf-9", RfidSettings(reader="ACS ACR122U"))
    with pytest.raises(PermanentError) as exc:
        r.open()
    assert "ACS ACR122U" in str(exc.value) and pcscd.readers[0] in str(exc.value)
    assert r.health().state is DeviceState.DOWN


def test_a_garbled_reply_is_temporary_then_the_card_is_left_alone(pcscd, reader, card_factory):
    card = card_factory()
    card.garble = True
    card.insert()
    errors = 0
    for _ in range(reader.settings.retries + 1):
        with pytest.raises(TemporaryError) as exc:
            reader.read(15)
        assert "garbled" in str(exc.value)
        errors += 1
    assert reader.read(1.0) is None            # retries used up: wait for the next tap
    health = reader.health()
    assert health.state is DeviceState.DEGRADED and health.metrics["read_errors"] == errors
    card.garble = False
    tap_out(card, pcscd)
    card.insert()
    scan = reader.read(15)
    assert scan is not None and scan.data == UID7


def test_an_error_status_is_retried_while_the_card_stays(pcscd, reader, card_factory):
    card = card_factory()
    card.status = 0x6300
    card.insert()
    with pytest.raises(TemporaryError) as exc:
        reader.read(15)
    assert "6300" in str(exc.value)
    card.status = None
    scan = reader.read(15)
    assert scan is not None and scan.data == UID7
    assert len(card.apdus) == 2


def test_a_card_without_a_uid_is_not_retried(pcscd, reader, card_factory):
    card = card_factory()
    card.status = 0x6A81
    card.insert()
    with pytest.raises(TemporaryError):
        reader.read(15)
    assert reader.read(1.0) is None
    assert len(card.apdus) == 1


def test_a_card_pulled_mid_read_is_temporary(pcscd, reader, card_factory):
    card = card_factory()
    card.pull_on_read = True
    card.insert()
    with pytest.raises(TemporaryError) as exc:
        reader.read(15)
    assert "mid-read" in str(exc.value) or "failed" in str(exc.value)
    assert wait_slot(pcscd.readers[0], present=False)
    deadline = time.monotonic() + 30
    while True:  # the retries find no card; then the reader waits quietly
        assert time.monotonic() < deadline, "the reader kept failing"
        try:
            if reader.read(1.0) is None:
                break
        except TemporaryError:
            continue
    card.pull_on_read = False
    card.insert()
    scan = reader.read(15)
    assert scan is not None and scan.data == UID7


def test_a_slow_card_is_read_and_the_reader_reported_slow(pcscd, reader, card_factory):
    card = card_factory()
    card.slow_s = 0.6
    card.insert()
    scan = reader.read(15)
    assert scan is not None and scan.data == UID7
    assert scan.fields["read_ms"] >= 600
    health = reader.health()
    assert health.state is DeviceState.DEGRADED and "slow" in health.detail


def test_the_reader_disappearing_is_permanent_and_it_comes_back(pcscd, reader, card_factory):
    try:
        pcscd.stop()
        with pytest.raises(PermanentError) as exc:
            for _ in range(30):
                reader.read(1.0)
        assert exc.value.device_id == "rf-1"
        assert reader.health().state is DeviceState.DOWN
        with pytest.raises(PermanentError):
            reader.open()
    finally:
        pcscd.start()
    reader.open()
    card_factory("CAFEF00D").insert()
    scan = reader.read(15)
    assert scan is not None and scan.data == "CAFEF00D"
