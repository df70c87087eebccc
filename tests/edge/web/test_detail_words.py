"""The engine's detail codes and the pages' words for them are the same set, in both
languages, with the same parameters."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from babel.messages.pofile import read_po

from edge import rules
from edge.web import detail_words

ROOT = Path(__file__).resolve().parents[3]
PO = ROOT / "edge" / "web" / "translations" / "zh.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _codes_used_in(path: Path) -> set[str]:
    """Every detail code written as a literal in ``Detail("x")``, ``detail("x", ...)``,
    ``_unknown("x")`` or the CODE_ERRORS table of a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            first = node.args[0]
            if name in ("Detail", "detail", "_unknown") and isinstance(first, ast.Constant):
                found.add(first.value)
    found |= {code for _, code in rules.CODE_ERRORS.values()}
    return found


def test_every_code_the_engine_writes_is_in_the_registry():
    used = set()
    for module in ("edge/engine.py", "edge/rules.py", "edge/entries.py"):
        used |= _codes_used_in(ROOT / module)
    assert used, "no detail codes found: the scan for them is broken"
    assert used == set(rules.DETAILS)


def test_the_catalogue_words_every_code_in_english_and_chinese():
    assert set(detail_words.WORDS) == set(rules.DETAILS)
    with PO.open("rb") as f:
        catalog = read_po(f)
    chinese = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
    for code, english in rules.DETAILS.items():
        message = detail_words.WORDS[code]
        assert message._args[0] == english, code  # the pages' msgid is the engine's words
        assert english in chinese, f"{code}: no Chinese for {english!r}"
        assert set(PLACEHOLDER.findall(chinese[english])) == \
            set(PLACEHOLDER.findall(english)), code


def test_details_read_in_the_screens_language(app):
    from flask_babel import force_locale

    why = rules.detail("wrong_gate", zone="South Stand", gates=["Gate 2", "Gate 4"])
    assert why.text == "zone South Stand is not admitted at this gate: go to Gate 2, Gate 4"
    revoked = rules.detail("revoked", why="refunded")
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert detail_words.translate(why.code, why.params, why.text) == \
            "South Stand 区不能从本入口进入，请走：Gate 2, Gate 4"
        assert detail_words.translate(revoked.code, revoked.params, revoked.text) == \
            "票已失效：已退票"
        # an entry recorded before details had codes keeps its English words
        assert detail_words.translate(None, None, "already inside") == "already inside"
        assert detail_words.translate("no_such_code", {}, "words") == "words"
    with app.test_request_context(), force_locale("en"):
        assert detail_words.translate(why.code, why.params, why.text) == why.text
