"""Every string the staff pages translate has a Simplified Chinese translation, and the .po
file carries no leftovers."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from sync.i18n import translations_from_po

CLOUD = Path(__file__).resolve().parents[2] / "cloud"
PO = CLOUD / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
METHODS = [("pages/**.py", "python"), ("templates/**.html", "jinja2.ext:babel_extract")]


def used_messages() -> dict[str, str]:
    found = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            CLOUD, METHODS, keywords={"_": None, "gettext": None, "lazy_gettext": None}):
        for m in message if isinstance(message, tuple) else (message,):
            if m:
                found.setdefault(m, filename)
    return found


def test_every_page_string_has_a_chinese_translation_and_none_is_left_over():
    used = used_messages()
    assert len(used) > 200
    with open(PO, "rb") as f:
        catalog = read_po(f)
    have = {m.id: m.string for m in catalog if m.id}
    missing = sorted(f"{where}: {m}" for m, where in used.items() if not have.get(m))
    assert missing == []
    assert sorted(set(have) - set(used)) == []


def test_the_po_loader_translates_and_keeps_placeholders():
    t = translations_from_po(PO)
    assert t.gettext("Sign in") == "登录"
    for msgid in used_messages():
        zh = t.gettext(msgid)
        for placeholder in ("%(n)s", "%(name)s", "%(number)s", "%(code)s"):
            assert (placeholder in msgid) == (placeholder in zh), msgid
