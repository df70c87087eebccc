"""Holder data on the appliance: sealing, the keyed document index, the holder key.

Every resident ID number here is fake: a region, a date and a sequence with the check
character computed by :func:`rid` below, independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.holders import (
    DOC_LABELS,
    DOC_TYPES,
    DocumentError,
    HolderDataError,
    HolderKeyError,
    HolderVault,
    generate_holder_key,
)

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def rid(body17: str) -> str:
    """A fake GB 11643 number: the 17-digit body and its ISO 7064 MOD 11-2 check character."""
    return body17 + "10X98765432"[sum(int(c) * w for c, w in zip(body17, WEIGHTS, strict=True))
                                  % 11]



GOOD = rid("11010119900307123")
WITH_X = next(rid(f"44030519850101{n:03d}") for n in range(1000)
              if rid(f"44030519850101{n:03d}").endswith("X"))



def test_the_document_types_in_order():
    assert DOC_TYPES == ("resident_id", "residence_permit", "foreign_permanent",
                         "hk_macau_permit", "taiwan_permit", "passport")
    assert set(DOC_LABELS) == set(DOC_TYPES)
    assert issubclass(DocumentError, ValueError)


# -- the vault --------------------------------------------------------------------------------

KEY = generate_holder_key()
VAULT = HolderVault(KEY)
OTHER = HolderVault(generate_holder_key())


def _subkey(key_text: str, info: bytes) -> bytes:
    raw = base64.b64decode(key_text)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)


@given(st.text(max_size=300), st.text(min_size=1, max_size=40))
@settings(max_examples=200)
def test_seal_open_round_trip(value, context):
    blob = VAULT.seal(value, context)
    assert VAULT.open(blob, context) == value
    assert len(blob) == 1 + 12 + len(value.encode("utf-8")) + 16


def test_a_sealed_value_is_version_nonce_ciphertext_with_the_context_as_aad():
    blob = VAULT.seal("张小三", "holder:55:name")
    assert blob[0] == 1
    aead = AESGCM(_subkey(KEY, b"wicket holder seal v1"))
    assert aead.decrypt(blob[1:13], blob[13:], b"holder:55:name").decode() == "张小三"
    assert "张小三".encode() not in blob


def test_every_seal_gets_a_fresh_nonce():
    blobs = [VAULT.seal("张小三", "holder:1:name") for _ in range(200)]
    assert len(set(blobs)) == len(blobs)
    assert len({b[1:13] for b in blobs}) == len(blobs)


@pytest.mark.parametrize("context", ["holder:2:name", "holder:1:doc", "holder:1:name ",
                                     "holder:11:name"])
def test_a_value_moved_to_another_row_or_column_does_not_open(context):
    blob = VAULT.seal("张小三", "holder:1:name")
    with pytest.raises(HolderDataError) as err:
        VAULT.open(blob, context)
    assert "张小三" not in str(err.value) and context in str(err.value)


def test_every_tampered_byte_is_detected():
    secret = "110101199003071234"
    blob = VAULT.seal(secret, "holder:9:doc")
    for i in range(len(blob)):
        for flip in (0x01, 0x80):
            tampered = blob[:i] + bytes([blob[i] ^ flip]) + blob[i + 1:]
            with pytest.raises(HolderDataError) as err:
                VAULT.open(tampered, "holder:9:doc")
            assert secret not in str(err.value)


def test_a_truncated_or_extended_blob_does_not_open():
    blob = VAULT.seal("Jane Doe", "holder:3:name")
    for end in range(len(blob)):
        with pytest.raises(HolderDataError):
            VAULT.open(blob[:end], "holder:3:name")
    with pytest.raises(HolderDataError):
        VAULT.open(blob + b"\x00", "holder:3:name")


def test_another_key_does_not_open():
    blob = VAULT.seal("Jane Doe", "holder:3:name")
    with pytest.raises(HolderDataError, match="wrong key"):
        OTHER.open(blob, "holder:3:name")


@pytest.mark.parametrize("garbage", [b"", b"\x01", b"\x00" * 40, b"\x02" + b"\x00" * 40,
                                     None, "not bytes", 42])
def test_garbage_is_a_holder_data_error(garbage):
    with pytest.raises(HolderDataError):
        VAULT.open(garbage, "holder:3:name")


@given(st.binary(max_size=100))
def test_random_bytes_never_open(blob):
    with pytest.raises(HolderDataError):
        VAULT.open(blob, "holder:3:name")


def test_blobs_from_a_database_driver_open_as_bytearray_or_memoryview():
    blob = VAULT.seal("Jane Doe", "holder:3:name")
    assert VAULT.open(bytearray(blob), "holder:3:name") == "Jane Doe"
    assert VAULT.open(memoryview(blob), "holder:3:name") == "Jane Doe"


def test_seal_wants_text_and_a_context():
    with pytest.raises(TypeError):
        VAULT.seal(b"bytes", "holder:1:name")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="context"):
        VAULT.seal("Jane", "")
    with pytest.raises(ValueError, match="context"):
        VAULT.open(VAULT.seal("Jane", "holder:1:name"), "")


# -- the keyed document hash ------------------------------------------------------------------


def test_doc_hash_is_an_hmac_under_the_index_subkey():
    expected = hmac.new(_subkey(KEY, b"wicket holder index v1"), f"resident_id:{GOOD}".encode(),
                        hashlib.sha256).hexdigest()
    assert VAULT.doc_hash("resident_id", GOOD) == expected
    assert _subkey(KEY, b"wicket holder index v1") != _subkey(KEY, b"wicket holder seal v1")


@pytest.mark.parametrize("doc_type, canonical, typed", [
    ("resident_id", WITH_X, f"{WITH_X[:6]} {WITH_X[6:14]} {WITH_X[14:].lower()}"),
    ("resident_id", WITH_X, f"{WITH_X[:6]}-{WITH_X[6:].lower()}"),
    ("passport", "E12345678", "e 1234 5678"),
    ("hk_macau_permit", "H12345678", "h-1234-5678"),
])
def test_doc_hash_ignores_formatting(doc_type, canonical, typed):
    assert VAULT.doc_hash(doc_type, typed) == VAULT.doc_hash(doc_type, canonical)


def test_doc_hash_is_stable_across_restarts_and_separates_types_and_keys():
    h = VAULT.doc_hash("resident_id", GOOD)
    assert len(h) == 64 and int(h, 16) >= 0
    assert HolderVault(KEY).doc_hash("resident_id", GOOD) == h
    assert OTHER.doc_hash("resident_id", GOOD) != h
    # The same characters are a valid number of two types; the hashes differ.
    assert VAULT.doc_hash("taiwan_permit", "12345678") != VAULT.doc_hash("passport", "12345678")
    permit = rid("81000019900307123")
    assert VAULT.doc_hash("resident_id", permit) != VAULT.doc_hash("residence_permit", permit)


@pytest.mark.parametrize("doc_type, number", [("resident_id", GOOD[:-1] + "5"),
                                              ("taiwan_permit", "1234567"),
                                              ("library_card", "12345678")])
def test_doc_hash_refuses_invalid_numbers(doc_type, number):
    with pytest.raises(DocumentError):
        VAULT.doc_hash(doc_type, number)


# -- the holder key ---------------------------------------------------------------------------


def test_generated_keys_are_32_random_bytes_in_base64():
    a, b = generate_holder_key(), generate_holder_key()
    assert a != b
    assert len(base64.b64decode(a, validate=True)) == 32
    HolderVault(a)


RAW = bytes(range(1, 33))


@pytest.mark.parametrize("form", [
    RAW,
    bytearray(RAW),
    base64.b64encode(RAW).decode(),
    base64.urlsafe_b64encode(RAW).decode(),
    base64.urlsafe_b64encode(RAW).decode().rstrip("="),
    f"  {base64.b64encode(RAW).decode()}\n",
])
def test_the_same_key_in_every_accepted_form(form):
    reference = HolderVault(RAW)
    vault = HolderVault(form)
    assert vault.doc_hash("passport", "E12345678") == reference.doc_hash("passport", "E12345678")
    assert reference.open(vault.seal("Jane", "holder:1:name"), "holder:1:name") == "Jane"


def test_url_safe_and_standard_alphabets_decode_alike():
    raw = bytes([0xFB, 0xFF, 0xBF] * 10 + [1, 2])  # encodes with + and / (or - and _)
    std, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    assert std != url
    assert HolderVault(std).doc_hash("passport", "E1234567") == \
        HolderVault(url).doc_hash("passport", "E1234567")


SHORT = base64.b64encode(bytes(range(1, 32))).decode()  # 31 bytes


@pytest.mark.parametrize("key, says", [
    ("not base64!", "not base64"),
    ("ключ", "not base64"),
    ("", "empty"),
    ("   ", "empty"),
    ("AAAA", "32 bytes, not 3"),
    (SHORT, "32 bytes, not 31"),
    (base64.b64encode(bytes(range(48))).decode(), "32 bytes, not 48"),
    ("A" * 43 + "=", "all zero"),
    (b"short", "32 bytes, not 5"),
    (RAW + b"\x00", "32 bytes, not 33"),
    (base64.b64encode(RAW), "32 bytes, not 44"),
    (bytes(32), "all zero"),
    (None, "base64 text or raw bytes"),
    (32, "base64 text or raw bytes"),
])
def test_bad_holder_keys(key, says):
    with pytest.raises(HolderKeyError, match=says) as err:
        HolderVault(key)
    assert issubclass(HolderKeyError, ValueError)
    if isinstance(key, str) and len(key) > 4:
        assert key.strip() not in str(err.value)


def test_the_vault_does_not_show_its_key():
    assert KEY not in repr(VAULT) and "hidden" in repr(VAULT)
