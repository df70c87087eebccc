"""Coded refusals: every code a hub rule raises is registered once, with its status and English
template; every registered code has the pages' words and their Chinese translation, and there
are words for no code that does not exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from cloud.core.errors import HubError
from cloud.errors import ERROR_CLASSES, all_codes
from cloud.web.error_words import ERROR_WORDS

CLOUD = Path(__file__).resolve().parents[2] / "cloud"
PO = CLOUD / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


# Codes raised by a name handed on: a sync request checked against its schema names the code
# of its refusal (check_request), an entry or heartbeat read by the contract's records names
# it in sync/records.py (BadField, raised again by read_record), and a weak or malformed
# secret's code comes from sync/credentials.py (WeakSecret), raised again as the appliance's
# refusal, and a refused password's from sync/passwords.py (WeakPassword), raised again as the
# staff area's.
HANDED_ON = {"check_request": ("SyncError", 2), "BadField": ("SyncError", 0),
             "WeakSecret": ("ApplianceError", 0), "WeakPassword": ("StaffError", 0)}


def _literal_calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            yield name, [a.value if isinstance(a, ast.Constant) else None for a in node.args]


def raised_codes() -> dict[str, set[str]]:
    """The literal codes raised, by error class: ``SomeError("code", ...)``, and those handed
    on (:data:`HANDED_ON`)."""
    names = {cls.__name__ for cls in ERROR_CLASSES}
    found: dict[str, set[str]] = {"SyncError": {"bad_request"}}  # a bad batch, not an entry
    paths = [*CLOUD.rglob("*.py"), CLOUD.parent / "sync" / "credentials.py",
             CLOUD.parent / "sync" / "records.py", CLOUD.parent / "sync" / "passwords.py"]
    for path in paths:
        for name, args in _literal_calls(path):
            if name in names and isinstance(args[0], str):
                found.setdefault(name, set()).add(args[0])
            elif name in HANDED_ON:
                cls, at = HANDED_ON[name]
                if len(args) > at and isinstance(args[at], str):
                    found.setdefault(cls, set()).add(args[at])
    return found


def test_every_code_raised_is_registered_with_its_class():
    raised = raised_codes()
    by_name = {cls.__name__: cls for cls in ERROR_CLASSES}
    assert set(raised) <= set(by_name)
    unregistered = sorted(f"{cls}: {code}" for cls, codes in raised.items()
                          for code in codes if code not in by_name[cls].codes)
    assert unregistered == []
    # and no class registers a code nothing raises (a document code is raised by its name)
    every = set().union(*raised.values()) | {c for c in all_codes() if c.startswith("document_")}
    assert sorted(set(all_codes()) - every) == []


def test_every_code_has_words_and_a_chinese_translation_and_no_words_are_left_over():
    codes = all_codes()
    assert set(ERROR_WORDS) == set(codes)
    with open(PO, "rb") as f:
        catalog = read_po(f)
    chinese = {m.id: m.string for m in catalog if m.id}
    for code, known in codes.items():
        words = ERROR_WORDS[code]._args[0]
        assert known.status in (400, 401, 403, 404, 409, 410, 413, 422, 429), code
        assert chinese.get(words), f"{code}: no Chinese for {words!r}"
        # the words name only values the code carries; the Chinese names the same ones
        assert set(PLACEHOLDER.findall(words)) <= set(PLACEHOLDER.findall(known.message)), code
        assert set(PLACEHOLDER.findall(chinese[words])) == set(PLACEHOLDER.findall(words)), code


def test_a_code_is_made_into_its_english_message_and_an_unknown_code_is_refused():
    from cloud.sales.tickets import TicketError

    e = TicketError("not_live", ticket=42, state="refunded")
    assert (str(e), e.status) == ("ticket 42 is already refunded", 409)
    assert e.as_json() == {"error": "not_live", "message": "ticket 42 is already refunded",
                           "params": {"ticket": 42, "state": "refunded"}}
    with pytest.raises(LookupError):
        TicketError("refused")
    assert "refused" not in all_codes()
    assert isinstance(e, HubError)


def test_every_seat_map_row_problem_has_words_and_a_chinese_translation():
    from cloud.inventory.seat_map import ROW_PROBLEMS
    from cloud.web.words import SEAT_ROW_WORDS

    assert set(SEAT_ROW_WORDS) == set(ROW_PROBLEMS)
    with open(PO, "rb") as f:
        chinese = {m.id: m.string for m in read_po(f) if m.id}
    for code, english in ROW_PROBLEMS.items():
        words = SEAT_ROW_WORDS[code]._args[0]
        assert chinese.get(words), code
        assert set(PLACEHOLDER.findall(words)) == set(PLACEHOLDER.findall(english)), code
