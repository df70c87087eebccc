"""Identity documents and masking: rules the hub and the appliance must both apply.

Document numbers are validated per type (clear messages that never echo the full number), and
every screen and log shows personal data only through :func:`mask_name` and
:func:`mask_document`.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

DOC_TYPES: tuple[str, ...] = ("resident_id", "residence_permit", "foreign_permanent",
                              "hk_macau_permit", "taiwan_permit", "passport")
DOC_LABELS = {
    "resident_id": "resident identity card",
    "residence_permit": "residence permit for Hong Kong, Macao and Taiwan residents",
    "foreign_permanent": "foreign permanent resident ID card",
    "hk_macau_permit": "mainland travel permit for Hong Kong and Macao residents",
    "taiwan_permit": "mainland travel permit for Taiwan residents",
    "passport": "passport",
}
# Documents a name-and-number verification service can check against the national register:
# the mainland resident identity card and the residence permit of Hong Kong, Macao and Taiwan
# residents (numbered in the same register). The others (passports, the travel permits, the
# foreign permanent resident card) are checked by a person from a photo of the document.
SERVICE_CHECKED: tuple[str, ...] = ("resident_id", "residence_permit")


def service_checkable(doc_type: str) -> bool:
    """Whether a verification service can check this document type by name and number (the
    others go to manual review)."""
    return doc_type in SERVICE_CHECKED


# Province-level codes of GB/T 2260 (first two digits of a resident ID number).
PROVINCES = frozenset({
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
    50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91,
})
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_STRIP = re.compile(r"[\s\-]")


class DocumentError(ValueError):
    """An invalid document number; ``code`` says what is wrong, the message says it in words."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def gb11643_check(body17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of a 17-digit body."""
    return _CHECK[sum(int(c) * w for c, w in zip(body17, _WEIGHTS, strict=True)) % 11]


def _birth_date(number: str, label: str) -> None:
    text = number[6:14]
    try:
        born = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise DocumentError("bad_birth_date", f"{label}: the birth date in the number is not a "
                            f"real date ({mask_document(number)})") from None
    if born.year < 1900 or born > date.today():
        raise DocumentError("bad_birth_date", f"{label}: the birth date in the number is "
                            f"impossible ({mask_document(number)})")


def _eighteen(number: str, label: str, lead: str = "") -> None:
    """The 18-character GB 11643 structure: 17 digits, a check character, a birth date."""
    if len(number) != 18:
        raise DocumentError("bad_length", f"{label}: must be 18 characters, not {len(number)}")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise DocumentError("bad_characters", f"{label}: must be 17 digits and a check digit "
                            "or X")
    if lead and not number.startswith(lead):
        raise DocumentError("bad_region", f"{label}: must start with {lead}")
    _birth_date(number, label)
    if gb11643_check(number[:17]) != number[17]:
        raise DocumentError("bad_check_digit", f"{label}: the check digit does not match — "
                            f"a digit was probably mistyped ({mask_document(number)})")


def normalize_document(doc_type: str, number: str) -> str:
    """The canonical form of a document number, or DocumentError saying what is wrong."""
    label = DOC_LABELS.get(doc_type)
    if label is None:
        raise DocumentError("unknown_type", f"unknown document type {doc_type!r}; known: "
                            + ", ".join(DOC_TYPES))
    if not isinstance(number, str):
        raise DocumentError("bad_characters", f"{label}: the number must be text")
    # NFKC turns full-width digits and letters (typed with a Chinese input method) into ASCII;
    # anything still outside ASCII cannot be a document number.
    n = _STRIP.sub("", unicodedata.normalize("NFKC", number))
    if not n:
        raise DocumentError("bad_length", f"{label}: the number is empty")
    if not n.isascii():
        raise DocumentError("bad_characters", f"{label}: only digits and the letters A-Z")
    n = n.upper()
    if doc_type == "resident_id":
        if len(n) == 15 and n.isdigit():
            raise DocumentError("bad_length", f"{label}: 15-digit first-generation numbers are "
                                "no longer valid; ask for the 18-digit card")
        _eighteen(n, label)
        if int(n[:2]) not in PROVINCES:
            raise DocumentError("bad_region", f"{label}: {n[:2]} is not a province code")
    elif doc_type == "residence_permit":
        if n[:6] not in ("810000", "820000", "830000"):
            raise DocumentError("bad_region", f"{label}: must start with 810000 (Hong Kong), "
                                "820000 (Macao) or 830000 (Taiwan)")
        _eighteen(n, label)
    elif doc_type == "foreign_permanent":
        if len(n) == 15:
            if not (n[:3].isalpha() and n[:3].isascii() and n[3:].isdigit()):
                raise DocumentError("bad_characters", f"{label}: the 15-character form is 3 "
                                    "letters and 12 digits")
        else:
            _eighteen(n, label, lead="9")
    elif doc_type == "hk_macau_permit":
        if not re.fullmatch(r"[HM]\d{8}(\d{2})?", n):
            raise DocumentError("bad_characters", f"{label}: must be H or M followed by 8 or "
                                "10 digits")
    elif doc_type == "taiwan_permit":
        if not re.fullmatch(r"\d{8}", n):
            raise DocumentError("bad_characters", f"{label}: must be 8 digits")
    elif doc_type == "passport":
        if not 5 <= len(n) <= 17:
            raise DocumentError("bad_length", f"{label}: must be 5 to 17 characters")
        if not re.fullmatch(r"[A-Z0-9]+", n):
            raise DocumentError("bad_characters", f"{label}: only letters A-Z and digits")
    return n


# -- masking ----------------------------------------------------------------------------------


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or ch >= "\U00020000"


def _mask_cjk(part: str) -> str:
    if len(part) <= 1:
        return "*" * len(part)
    if len(part) == 2:
        return part[0] + "*"
    return part[0] + "*" * (len(part) - 2) + part[-1]


def mask_name(name: str) -> str:
    """张三 → 张*, 张小三 → 张*三, John Smith → J*** S****; parts joined by · masked each."""
    name = name.strip()
    if not name:
        return ""
    for dot in ("·", "•", "・"):
        if dot in name:
            return dot.join(_mask_cjk(p) for p in name.split(dot))
    if any(_is_cjk(c) for c in name):
        return _mask_cjk(name.replace(" ", ""))
    words = name.split()
    masked = " ".join(w[0] + "*" * (len(w) - 1) for w in words)
    if masked == name:  # every word a single letter: nothing was hidden
        return " ".join("*" * len(w) for w in words)
    return masked


def mask_document(number: str) -> str:
    """Keep the first 4 and last 4 of long numbers, 2 and 2 of medium ones, the last 1 else."""
    n = len(number)
    if n >= 14:
        head, tail = 4, 4
    elif n >= 7:
        head, tail = 2, 2
    else:
        head, tail = 0, 1 if n > 1 else 0
    return number[:head] + "*" * (n - head - tail) + number[n - tail:]
