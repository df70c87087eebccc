"""Identity documents and masking: the rules the hub and the appliance share.

Every resident ID number here is fake: a region, a date and a sequence with the check
character computed by :func:`rid` below, independently of the code under test.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sync.identity import (
    DOC_LABELS,
    DOC_TYPES,
    DocumentError,
    gb11643_check,
    mask_document,
    mask_name,
    normalize_document,
    service_checkable,
)

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
PROVINCES = (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
             50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91)


def rid(body17: str) -> str:
    """A fake GB 11643 number: the 17-digit body and its ISO 7064 MOD 11-2 check character."""
    return body17 + "10X98765432"[sum(int(c) * w for c, w in zip(body17, WEIGHTS, strict=True))
                                  % 11]


def born(d: date) -> str:
    return d.strftime("%Y%m%d")


GOOD = rid("11010119900307123")
WITH_X = next(rid(f"44030519850101{n:03d}") for n in range(1000)
              if rid(f"44030519850101{n:03d}").endswith("X"))
TODAY = date.today()


def reject(doc_type: str, number: str) -> DocumentError:
    with pytest.raises(DocumentError) as err:
        normalize_document(doc_type, number)
    return err.value


def test_the_document_types_in_order():
    assert DOC_TYPES == ("resident_id", "residence_permit", "foreign_permanent",
                         "hk_macau_permit", "taiwan_permit", "passport")
    assert set(DOC_LABELS) == set(DOC_TYPES)
    assert issubclass(DocumentError, ValueError)


# -- resident identity card -------------------------------------------------------------------


def test_the_test_helper_agrees_with_the_published_algorithm():
    # Worked by hand: the weighted sum of 11010119900307123 is 174; 174 mod 11 = 9 -> "3".
    assert sum(int(c) * w for c, w in zip("11010119900307123", WEIGHTS, strict=True)) == 174
    assert GOOD == "110101199003071233"
    assert gb11643_check(GOOD[:17]) == "3" and gb11643_check(WITH_X[:17]) == "X"


@pytest.mark.parametrize("number", [
    GOOD,
    WITH_X,
    rid("31010419751231001"),
    rid("65010220000229999"),  # 29 February of a leap year
    rid("54000019000101000"),  # the earliest accepted birth date
    rid("110101" + born(TODAY) + "001"),  # born today
    rid("81000019900307123"),  # 81, 82, 83 and 91 are on the accepted list
    rid("91000019900307123"),
])
def test_good_resident_ids(number):
    assert normalize_document("resident_id", number) == number


@pytest.mark.parametrize("typed", [
    f"{WITH_X[:6]} {WITH_X[6:14]} {WITH_X[14:].lower()}",
    f"{WITH_X[:6]}-{WITH_X[6:14]}-{WITH_X[14:]}",
    f"  {WITH_X.lower()}\t",
    f"{WITH_X[:6]} - {WITH_X[6:]}",
])
def test_resident_id_ignores_spaces_hyphens_and_case(typed):
    assert normalize_document("resident_id", typed) == WITH_X


def _other_check_chars(number: str) -> list[str]:
    return [number[:17] + c for c in "0123456789X" if c != number[17]]


@pytest.mark.parametrize("number, code", [
    *[(n, "bad_check_digit") for n in _other_check_chars(GOOD)],
    (rid("11010119900230123"), "bad_birth_date"),  # 30 February
    (rid("11010119000229123"), "bad_birth_date"),  # 1900 was not a leap year
    (rid("11010119901301123"), "bad_birth_date"),  # month 13
    (rid("11010119900100123"), "bad_birth_date"),  # day 0
    (rid("11010118991231123"), "bad_birth_date"),  # before 1900
    (rid("110101" + born(TODAY + timedelta(days=1)) + "123"), "bad_birth_date"),
    (rid("110101" + born(TODAY + timedelta(days=400)) + "123"), "bad_birth_date"),
    (rid("00010119900307123"), "bad_region"),
    (rid("16010119900307123"), "bad_region"),
    (rid("99010119900307123"), "bad_region"),
    (GOOD[:-1], "bad_length"),
    (GOOD + "1", "bad_length"),
    ("", "bad_length"),
    ("   ", "bad_length"),
    ("110101900307123", "bad_length"),  # first generation, 15 digits
    ("11010119900307A23X", "bad_characters"),
    ("X10101199003071230", "bad_characters"),
    ("11010119900307123Y", "bad_characters"),
    ("1101011990.3071230", "bad_characters"),
])
def test_bad_resident_ids(number, code):
    err = reject("resident_id", number)
    assert err.code == code
    assert "resident identity card" in str(err)


def test_first_generation_numbers_are_refused_by_name():
    err = reject("resident_id", "110101900307123")
    assert "15-digit" in str(err) and "no longer valid" in str(err)


@pytest.mark.parametrize("province", range(100))
def test_the_province_list(province):
    number = rid(f"{province:02d}010119900307123")
    if province in PROVINCES:
        assert normalize_document("resident_id", number) == number
    else:
        assert reject("resident_id", number).code == "bad_region"


valid_bodies = st.builds(
    lambda p, area, d, seq: f"{p:02d}{area:04d}{born(d)}{seq:03d}",
    st.sampled_from(PROVINCES), st.integers(0, 9999),
    st.dates(date(1900, 1, 1), TODAY), st.integers(0, 999))


@given(valid_bodies)
@settings(max_examples=300)
def test_any_valid_body_with_its_check_character_validates(body):
    assert gb11643_check(body) == rid(body)[17]
    assert normalize_document("resident_id", rid(body)) == rid(body)


@given(valid_bodies, st.integers(0, 16), st.integers(1, 9))
@settings(max_examples=300)
def test_the_check_character_changes_with_every_single_digit(body, i, delta):
    changed = body[:i] + str((int(body[i]) + delta) % 10) + body[i + 1:]
    assert gb11643_check(changed) != gb11643_check(body)


@given(valid_bodies)
@settings(max_examples=50, deadline=None)
def test_every_single_digit_error_is_rejected(body):
    number = rid(body)
    for i in range(18):
        for c in "0123456789X" if i == 17 else "0123456789":
            if c != number[i]:
                reject("resident_id", number[:i] + c + number[i + 1:])


@given(valid_bodies, st.integers(0, 15))
@settings(max_examples=300)
def test_swapping_two_adjacent_digits_is_rejected(body, i):
    number = rid(body)
    assume(number[i] != number[i + 1])
    reject("resident_id", number[:i] + number[i + 1] + number[i] + number[i + 2:])


# -- the other documents ----------------------------------------------------------------------


@pytest.mark.parametrize("doc_type, typed, canonical", [
    ("residence_permit", rid("81000019900307123"), rid("81000019900307123")),
    ("residence_permit", rid("82000019851212456"), rid("82000019851212456")),
    ("residence_permit", f"830000 {rid('83000020000229001')[6:].lower()}",
     rid("83000020000229001")),
    ("foreign_permanent", rid("91184019850615012"), rid("91184019850615012")),
    ("foreign_permanent", rid("93315619900307123"), rid("93315619900307123")),
    ("foreign_permanent", "usa110065012345", "USA110065012345"),
    ("foreign_permanent", "FRA 3100 8001 0001", "FRA310080010001"),
    ("hk_macau_permit", "H12345678", "H12345678"),
    ("hk_macau_permit", "m 1234 5678", "M12345678"),
    ("hk_macau_permit", "H1234567801", "H1234567801"),
    ("taiwan_permit", "12345678", "12345678"),
    ("taiwan_permit", "1234-5678", "12345678"),
    ("passport", "E12345678", "E12345678"),
    ("passport", "g 1234 5678", "G12345678"),
    ("passport", "12345", "12345"),
    ("passport", "AB1234567890CDEFG", "AB1234567890CDEFG"),
    ("passport", "x-99 88 77", "X998877"),
])
def test_good_documents(doc_type, typed, canonical):
    assert normalize_document(doc_type, typed) == canonical


@pytest.mark.parametrize("doc_type, number, code", [
    ("residence_permit", GOOD, "bad_region"),  # a resident ID is not a residence permit
    ("residence_permit", rid("81000119900307123"), "bad_region"),
    ("residence_permit", rid("84000019900307123"), "bad_region"),
    ("residence_permit", rid("81000019900307123")[:-1] + "Y", "bad_characters"),
    ("residence_permit", "8100001990030712", "bad_length"),
    ("residence_permit", rid("81000019901301123"), "bad_birth_date"),
    ("residence_permit", _other_check_chars(rid("81000019900307123"))[0], "bad_check_digit"),
    ("foreign_permanent", rid("13310019900307123"), "bad_region"),
    ("foreign_permanent", rid("93310019900230123"), "bad_birth_date"),
    ("foreign_permanent", _other_check_chars(rid("93310019900307123"))[3], "bad_check_digit"),
    ("foreign_permanent", "9331001990030712", "bad_length"),
    ("foreign_permanent", "US1110065012345", "bad_characters"),
    ("foreign_permanent", "USA11006501234X", "bad_characters"),
    ("hk_macau_permit", "X12345678", "bad_characters"),
    ("hk_macau_permit", "H1234567", "bad_characters"),
    ("hk_macau_permit", "H123456789", "bad_characters"),
    ("hk_macau_permit", "12345678", "bad_characters"),
    ("hk_macau_permit", "HM2345678", "bad_characters"),
    ("taiwan_permit", "1234567", "bad_characters"),
    ("taiwan_permit", "123456789", "bad_characters"),
    ("taiwan_permit", "1234567890(B)", "bad_characters"),  # old booklet form
    ("taiwan_permit", "T1234567", "bad_characters"),
    ("passport", "E123", "bad_length"),
    ("passport", "E" * 18, "bad_length"),
    ("passport", "E1234567é", "bad_characters"),
    ("passport", "E1234/5678", "bad_characters"),
    ("passport", "P<CHN1234", "bad_characters"),
])
def test_bad_documents(doc_type, number, code):
    err = reject(doc_type, number)
    assert err.code == code
    assert DOC_LABELS[doc_type] in str(err)


@pytest.mark.parametrize("doc_type", ["library_card", "", "Resident_ID"])
def test_unknown_document_types(doc_type):
    err = reject(doc_type, GOOD)
    assert err.code == "unknown_type"
    assert "unknown document type" in str(err) and "resident_id" in str(err)


@pytest.mark.parametrize("doc_type", DOC_TYPES)
@pytest.mark.parametrize("number", [
    rid("11010119900230123"),  # bad date
    GOOD[:-1] + "5",  # bad check digit
    rid("99010119900307123"),  # bad region
    rid("81000019900307123")[:-1] + "9",
    GOOD + "77",
    "H1234567890123",
    "E1234567é89",
])
def test_messages_never_show_the_whole_number(doc_type, number):
    try:
        normalize_document(doc_type, number)
    except DocumentError as err:
        assert number not in str(err) and number.upper() not in str(err)


@given(st.sampled_from(DOC_TYPES),
       st.text(alphabet="0123456789XHMEG x-", min_size=7, max_size=20))
@settings(max_examples=500)
def test_no_message_contains_the_number_typed(doc_type, typed):
    try:
        canonical = normalize_document(doc_type, typed)
    except DocumentError as err:
        compact = typed.replace(" ", "").replace("-", "").upper()
        assert len(compact) < 7 or compact not in str(err)
        assert DOC_LABELS[doc_type] in str(err)
        assert err.code in {"bad_length", "bad_characters", "bad_check_digit",
                            "bad_birth_date", "bad_region"}
    else:
        assert normalize_document(doc_type, canonical) == canonical


# Digits and letters from other scripts: NFKC folds full-width ones to ASCII, the rest are
# refused, so a canonical number is always ASCII and hashes the same however it was typed.


@pytest.mark.parametrize("doc_type, number", [
    ("taiwan_permit", "١٢٣٤٥٦٧٨"),
    ("hk_macau_permit", "H１２３４５６７８"),
])
def test_canonical_numbers_are_ascii(doc_type, number):
    try:
        canonical = normalize_document(doc_type, number)
    except DocumentError:
        return
    assert canonical.isascii()


@pytest.mark.parametrize("odd, plain", [("²", "2"), ("１", "1"), ("٣", None), ("³", "3")])
def test_odd_digits_fold_to_ascii_or_raise_a_document_error(odd, plain):
    # GOOD[15] is replaced: the same digit folds back to GOOD, another digit breaks the check
    number = GOOD[:15] + odd + GOOD[16:]
    if plain is None:
        reject("resident_id", number)
    elif plain == GOOD[15]:
        assert normalize_document("resident_id", number) == GOOD
    else:
        assert reject("resident_id", number).code == "bad_check_digit"


def test_passport_letters_are_ascii_before_upper_casing():
    reject("passport", "STRAßE12")


# -- masking ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, masked", [
    ("张三", "张*"),
    ("张小三", "张*三"),
    ("欧阳小明", "欧**明"),
    ("司马相如", "司**如"),
    ("王", "*"),
    (" 张小三 ", "张*三"),
    ("阿依古丽·买买提", "阿**丽·买*提"),
    ("阿里·木", "阿*·*"),
    ("John Smith", "J*** S****"),
    ("Mary Ann Lee", "M*** A** L**"),
    ("Li", "L*"),
    ("", ""),
    ("   ", ""),
])
def test_mask_name(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize("name", ["A B", "X Y Z"])
def test_names_of_single_letters_are_masked(name):
    assert mask_name(name) != name


cjk = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)


@given(st.text(alphabet=cjk, min_size=2, max_size=10))
def test_chinese_names_keep_only_the_first_and_last_character(name):
    masked = mask_name(name)
    assert len(masked) == len(name) and masked != name
    assert masked[0] == name[0]
    assert masked[1:-1] == "*" * (len(name) - 2)
    assert masked[-1] == ("*" if len(name) == 2 else name[-1])


@given(st.lists(st.text(alphabet=cjk, min_size=1, max_size=6), min_size=2, max_size=3))
def test_names_with_a_middle_dot_are_masked_part_by_part(parts):
    name = "·".join(parts)
    assert mask_name(name) == "·".join(mask_name(p) for p in parts)
    assert mask_name(name) != name


latin_word = st.text(alphabet=st.characters(min_codepoint=ord("a"), max_codepoint=ord("z")),
                     min_size=1, max_size=10).map(str.capitalize)


@given(st.lists(latin_word, min_size=1, max_size=4).filter(lambda ws: max(map(len, ws)) > 1))
def test_latin_names_keep_the_first_letter_of_each_word(words):
    name = " ".join(words)
    masked = mask_name(name)
    assert masked == " ".join(w[0] + "*" * (len(w) - 1) for w in words)
    assert masked != name
    for w in words:
        assert len(w) < 2 or w[1:] not in masked


@pytest.mark.parametrize("number, masked", [
    ("110101199003071234", "1101**********1234"),
    (GOOD, "1101**********1233"),
    ("USA110065012345", "USA1*******2345"),
    ("12345678901234", "1234******1234"),
    ("1234567890123", "12*********23"),
    ("H1234567801", "H1*******01"),
    ("E12345678", "E1*****78"),
    ("12345678", "12****78"),
    ("1234567", "12***67"),
    ("123456", "*****6"),
    ("H1234", "****4"),
    ("12", "*2"),
    ("7", "*"),
    ("", ""),
])
def test_mask_document(number, masked):
    assert mask_document(number) == masked


@given(st.text(alphabet="0123456789ABCDEFGHMXZ", max_size=24))
def test_masked_documents_keep_the_length_and_hide_the_middle(number):
    masked = mask_document(number)
    n = len(number)
    assert len(masked) == n
    if n > 1:
        assert masked != number
    keep = (4, 4) if n >= 14 else (2, 2) if n >= 7 else (0, 1)
    if n >= 3:
        middle = number[keep[0]:n - keep[1]]
        assert masked[keep[0]:n - keep[1]] == "*" * len(middle)
        assert middle not in masked
        assert masked.endswith(number[n - keep[1]:])


def test_only_the_resident_id_and_the_residence_permit_go_to_the_verification_service():
    checked = {t for t in DOC_TYPES if service_checkable(t)}
    assert checked == {"resident_id", "residence_permit"}
    assert not service_checkable("passport") and not service_checkable("no_such_type")
