"""Identity documents and masking, shared by the hub and the appliance."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.holders import (
    DocumentError,
    gb11643_check,
    mask_document,
    mask_name,
    normalize_document,
)


def rid(body17: str) -> str:
    """A fake resident ID number: the body and its computed check character."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body17 + "10X98765432"[sum(int(c) * w for c, w in zip(body17, weights, strict=True)) % 11]


GOOD = rid("11010119900307123")


def test_check_digit_matches_an_independent_computation():
    assert gb11643_check("11010119900307123") == GOOD[-1]


def test_resident_id_normalises_spacing_and_lower_case_x():
    x = next(rid(f"44030519850101{n:03d}") for n in range(1000)
             if rid(f"44030519850101{n:03d}").endswith("X"))
    assert normalize_document("resident_id", f" {x[:6]} {x[6:14]}-{x[14:].lower()} ") == x
    assert normalize_document("resident_id", GOOD) == GOOD


@pytest.mark.parametrize("number, code", [
    (GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1"), "bad_check_digit"),
    (rid("11010119900230123"), "bad_birth_date"),  # 30 February
    (rid("11010118890101123"), "bad_birth_date"),
    (rid("110101" + (date.today() + timedelta(days=400)).strftime("%Y%m%d") + "123"),
     "bad_birth_date"),
    (rid("99010119900307123"), "bad_region"),
    (GOOD[:-1], "bad_length"),
    ("110101900307123", "bad_length"),  # first-generation 15 digits
    ("11010119900307A23X", "bad_characters"),
    ("", "bad_length"),
])
def test_bad_resident_ids(number, code):
    with pytest.raises(DocumentError) as err:
        normalize_document("resident_id", number)
    assert err.value.code == code
    assert len(number) < 8 or number not in str(err.value)


@given(st.sampled_from(["11", "31", "44", "65", "81"]), st.integers(0, 9999),
       st.dates(date(1920, 1, 1), date(2020, 12, 31)), st.integers(0, 999))
@settings(max_examples=200, deadline=None)
def test_every_single_digit_error_is_caught(province, area, born, seq):
    number = rid(f"{province}{area:04d}{born:%Y%m%d}{seq:03d}")
    assert normalize_document("resident_id", number) == number
    for i in range(17):
        for digit in "0123456789":
            if digit == number[i]:
                continue
            with pytest.raises(DocumentError):
                normalize_document("resident_id", number[:i] + digit + number[i + 1:])


@pytest.mark.parametrize("doc_type, good, bad", [
    ("residence_permit", rid("81000019900307123"), rid("11000019900307123")),
    ("residence_permit", rid("83000019851212456"), rid("83000019851312456")),
    ("foreign_permanent", rid("93310019900307123"), rid("13310019900307123")),
    ("foreign_permanent", "USA110065012345", "US1110065012345"),
    ("hk_macau_permit", "H12345678", "X12345678"),
    ("hk_macau_permit", "M1234567801", "M123456"),
    ("taiwan_permit", "12345678", "1234567"),
    ("passport", "E12345678", "E12"),
    ("passport", "G 1234 5678", "E12345678é"),
])
def test_other_documents(doc_type, good, bad):
    assert normalize_document(doc_type, good) == good.replace(" ", "").upper()
    with pytest.raises(DocumentError):
        normalize_document(doc_type, bad)


def test_unknown_document_type():
    with pytest.raises(DocumentError, match="unknown document type") as err:
        normalize_document("library_card", "123")
    assert err.value.code == "unknown_type"


@pytest.mark.parametrize("name, masked", [
    ("张三", "张*"), ("张小三", "张*三"), ("欧阳小明", "欧**明"), ("王", "*"),
    ("John Smith", "J*** S****"), ("阿依古丽·买买提", "阿**丽·买*提"), ("", ""),
    ("Li", "L*"),
])
def test_mask_name(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize("number, masked", [
    (GOOD, GOOD[:4] + "*" * 10 + GOOD[-4:]), ("E12345678", "E1*****78"),
    ("12345678", "12****78"), ("H1234", "****4"), ("7", "*"),
])
def test_mask_document(number, masked):
    assert mask_document(number) == masked


@given(st.text(alphabet="0123456789ABCDEFX", min_size=2, max_size=20))
def test_masked_documents_keep_length_and_hide_the_middle(number):
    masked = mask_document(number)
    assert len(masked) == len(number) and masked != number or set(number) <= {"*"}
    assert "*" in masked


@given(st.text(min_size=2, max_size=12).filter(lambda s: s.strip() and len(s.strip()) > 1))
def test_masked_names_never_equal_the_name(name):
    assert mask_name(name) != name.strip()
