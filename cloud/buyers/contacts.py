"""Mobile numbers and e-mail addresses of buyers: normalised and checked, masked for display,
and the keyed hashes they are found by (the data key's, cloud/core/seal.py), never stored
in clear."""

from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa

from cloud.buyers.errors import BuyerError
from cloud.core.seal import keyring_for

# a mainland mobile number: 11 digits, 1 then 3 to 9 (every operator's ranges, virtual ones
# included); +86, 0086 or 86 before it, spaces and dashes inside, are accepted and dropped
_MOBILE = re.compile(r"(?:\+?86|0086)?(1[3-9]\d{9})")
_SEPARATORS = re.compile(r"[\s\-()]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
MAX_EMAIL = 254


def normalize_mobile(number: object) -> str:
    """The 11-digit form of a mainland mobile number, or ``bad_mobile``."""
    if not isinstance(number, str):
        raise BuyerError("bad_mobile")
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", number))
    found = _MOBILE.fullmatch(text)
    if found is None:
        raise BuyerError("bad_mobile")
    return found.group(1)


def normalize_email(address: object) -> str:
    """An e-mail address as kept (trimmed, lower-cased), or ``bad_email``."""
    if not isinstance(address, str):
        raise BuyerError("bad_email")
    text = address.strip().lower()
    if len(text) > MAX_EMAIL or not text.isprintable() or _EMAIL.fullmatch(text) is None:
        raise BuyerError("bad_email")
    return text


def mask_mobile(number: str) -> str:
    """13800138000 → 138****8000."""
    return number[:3] + "*" * (len(number) - 7) + number[-4:] if len(number) > 7 else "*" * len(number)


def mask_email(address: str) -> str:
    """buyer@example.com → b****@example.com."""
    local, _, domain = address.partition("@")
    return (local[:1] + "*" * max(len(local) - 1, 1)) + "@" + domain


def mobile_hash(conn: sa.Connection, number: str) -> str:
    """The keyed hash a (normalised) number is stored and found by, under the current key."""
    return keyring_for(conn).doc_hash(f"mobile:{number}")


def mobile_hashes(conn: sa.Connection, number: str) -> list[str]:
    """The number's hash under every key of the data key file (a lookup during a rotation)."""
    return keyring_for(conn).doc_hashes(f"mobile:{number}")


def email_hash(conn: sa.Connection, address: str) -> str:
    return keyring_for(conn).doc_hash(f"email:{address}")
