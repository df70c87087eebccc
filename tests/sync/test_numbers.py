"""Ticket numbers: the format, the Luhn mod 32 check symbol, reading typed input."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from sync import numbers

bodies = st.text(alphabet=numbers.ALPHABET, min_size=numbers.RANDOM_SYMBOLS,
                 max_size=numbers.RANDOM_SYMBOLS)


def test_check_symbols_worked_by_hand():
    # Luhn mod N with N = 32; the rightmost symbol of the body is doubled, and a doubled value
    # of 32 or more counts as its two base-32 digits (Z = 31: 62 -> 1 + 30)
    assert numbers.check_symbol("0000000000") == "0"
    assert numbers.check_symbol("0000000001") == "Y"  # 2 -> 32 - 2 = 30 = Y
    assert numbers.check_symbol("0000000010") == "Z"  # 1 -> 32 - 1 = 31 = Z
    assert numbers.check_symbol("000000000Z") == "1"  # 62 -> 1 + 30 = 31 -> 1


def test_the_alphabet_has_nothing_to_confuse():
    assert len(numbers.ALPHABET) == 32 == len(set(numbers.ALPHABET))
    assert not set("ILOU") & set(numbers.ALPHABET)


@given(bodies)
def test_every_single_mistyped_symbol_is_caught(body):
    number = body + numbers.check_symbol(body)
    assert numbers.is_number(number)
    for i, wrong in itertools.product(range(numbers.LENGTH), numbers.ALPHABET):
        if wrong != number[i]:
            assert not numbers.is_number(number[:i] + wrong + number[i + 1:])


@given(bodies)
def test_swapped_neighbours_are_caught_but_for_0_and_z(body):
    number = body + numbers.check_symbol(body)
    for i in range(numbers.LENGTH - 1):
        a, b = number[i], number[i + 1]
        if a != b and {a, b} != {"0", "Z"}:
            assert not numbers.is_number(number[:i] + b + a + number[i + 2:])


def test_new_numbers_have_the_format_and_do_not_repeat():
    got = [numbers.new_number() for _ in range(2000)]
    assert len(set(got)) == len(got)
    assert all(numbers.is_number(n) and len(n) == numbers.LENGTH for n in got)


def test_typed_input_is_read_as_crockford_reads_it():
    assert numbers.normalize(" 7kq2-m9xa pc4\n") == "7KQ2M9XAPC4"
    assert numbers.normalize("OIL") == "011"
    assert numbers.looks_like_number("7KQ2M9XAPC4") and not numbers.looks_like_number("T00001002")
    assert not numbers.is_number("T00001002")
