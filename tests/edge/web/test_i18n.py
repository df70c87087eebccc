"""Every text on the pages has its Simplified Chinese; the .po loader compiles in memory."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from sync.i18n import translations_from_po

WEB = Path(__file__).resolve().parents[3] / "edge" / "web"
PO = WEB / "translations" / "zh.po"


def _used_messages() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = set()
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(WEB), method_map, options_map={"templates/**.html": {}}, keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_has_a_chinese_translation():
    with PO.open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and m.string}
    used = _used_messages()
    assert len(used) > 200
    assert used - translated == set()


def test_translations_from_po_compiles_in_memory(tmp_path):
    t = translations_from_po(PO)
    assert t.gettext("Log in") == "登录"
    assert t.gettext("Last %(n)d minutes; refreshes itself every 5 seconds.") % {"n": 5} \
        == "最近 5 分钟；每 5 秒自动刷新。"
    assert t.gettext("not a message") == "not a message"
    po = tmp_path / "x.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  '#, fuzzy\nmsgid "Hello"\nmsgstr "你好"\n\nmsgid "Bye"\nmsgstr "再见"\n',
                  encoding="utf-8")
    t = translations_from_po(po)
    assert t.gettext("Hello") == "Hello"  # fuzzy entries are left out, as msgfmt does
    assert t.gettext("Bye") == "再见"
