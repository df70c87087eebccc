"""Ticket numbers: what is printed beside the code and read out at a help desk.

A ticket number identifies a ticket to a person; it is never a credential on its own (a gate
admits by number only when staff type it, where the gate allows it). It must still not be
guessable from another ticket's number, so the hub draws each one at random:

* 10 symbols drawn with :mod:`secrets` from Crockford's base-32 alphabet
  ``0123456789ABCDEFGHJKMNPQRSTVWXYZ`` (no I, L, O or U: nothing to confuse when read aloud
  or typed), 50 random bits;
* then one check symbol from the same alphabet, by the Luhn mod N algorithm with N = 32,
  which catches every single mistyped symbol and every swap of two neighbouring symbols
  but that of ``0`` and ``Z`` (as Luhn's mod 10 misses ``09`` and ``90``).

Every new number is 11 symbols long, e.g. ``7KQ2M9XAPC4``. Typed input is read the way
Crockford's encoding reads it: case, spaces and dashes do not matter, ``O`` is ``0`` and ``I``
or ``L`` is ``1``. Numbers issued before this format (``T000001234``) stay as they were.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
N = len(ALPHABET)
RANDOM_SYMBOLS = 10
LENGTH = RANDOM_SYMBOLS + 1
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def check_symbol(body: str) -> str:
    """The Luhn mod 32 check symbol of ``body`` (symbols of :data:`ALPHABET`)."""
    total = 0
    factor = 2  # the rightmost symbol of the body is doubled
    for c in reversed(body):
        addend = factor * _VALUE[c]
        total += addend // N + addend % N
        factor = 1 if factor == 2 else 2
    return ALPHABET[(N - total % N) % N]


def new_number() -> str:
    """A fresh random ticket number with its check symbol."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_SYMBOLS))
    return body + check_symbol(body)


def normalize(text: str) -> str:
    """Typed text as a number would be stored: upper case, no spaces or dashes, O→0, I/L→1."""
    return "".join(text.split()).replace("-", "").upper().translate(_READ_AS)


def is_number(text: str) -> bool:
    """Whether normalised ``text`` has this format: 11 symbols with a matching check symbol."""
    return (len(text) == LENGTH and all(c in _VALUE for c in text)
            and check_symbol(text[:-1]) == text[-1])


def looks_like_number(text: str) -> bool:
    """Whether normalised ``text`` has this format's shape, its check symbol right or not."""
    return len(text) == LENGTH and all(c in _VALUE for c in text)
