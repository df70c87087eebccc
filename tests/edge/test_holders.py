"""Holder data sealed at rest, and the keyed document index."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.holders import HolderDataError, HolderKeyError, HolderVault, generate_holder_key
from sync.sample import resident_id

GOOD = resident_id("11010119900307123")


VAULT = HolderVault(generate_holder_key())


@given(st.text(max_size=200))
@settings(max_examples=100)
def test_seal_open_round_trip(value):
    assert VAULT.open(VAULT.seal(value, "holder:1:name"), "holder:1:name") == value


def test_sealing_uses_a_fresh_nonce_and_binds_the_context():
    a, b = VAULT.seal("张小三", "holder:1:name"), VAULT.seal("张小三", "holder:1:name")
    assert a != b
    with pytest.raises(HolderDataError):
        VAULT.open(a, "holder:2:name")
    with pytest.raises(HolderDataError):
        HolderVault(generate_holder_key()).open(a, "holder:1:name")
    with pytest.raises(HolderDataError):
        VAULT.open(a[:20], "holder:1:name")


def test_every_tampered_byte_is_detected():
    blob = VAULT.seal("110101199003071234", "holder:9:doc")
    for i in range(len(blob)):
        tampered = blob[:i] + bytes([blob[i] ^ 0x01]) + blob[i + 1:]
        with pytest.raises(HolderDataError) as err:
            VAULT.open(tampered, "holder:9:doc")
        assert "110101199003071234" not in str(err.value)


def test_doc_hash_ignores_formatting_and_separates_types_and_keys():
    h = VAULT.doc_hash("resident_id", GOOD)
    assert VAULT.doc_hash("resident_id", f"{GOOD[:6]} {GOOD[6:]}".lower()) == h
    assert HolderVault(generate_holder_key()).doc_hash("resident_id", GOOD) != h
    assert VAULT.doc_hash("passport", "E12345678") != VAULT.doc_hash("hk_macau_permit",
                                                                     "H12345678")
    assert GOOD not in h


@pytest.mark.parametrize("key", ["not base64!", "AAAA", b"short"])
def test_bad_holder_keys(key):
    with pytest.raises(HolderKeyError):
        HolderVault(key)
