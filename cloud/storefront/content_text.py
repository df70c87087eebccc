"""Content's text is plain: how it is kept, split into paragraphs and chosen by the reader's
language. Nothing here is HTML, and nothing a page shows of it is either: a page prints each
line escaped (:func:`paragraphs`)."""

from __future__ import annotations

import re
import unicodedata
from typing import Protocol


class Bilingual(Protocol):
    title_zh: str
    title_en: str
    body_zh: str
    body_en: str


def clean_text(text: str, *, one_line: bool) -> str:
    """Text as it is kept: NFC, line ends as ``\\n``, tabs as spaces, other control and
    format characters out, trailing spaces off each line, at most one empty line in a row; a
    title becomes one line."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\t", " ")
    text = "".join(c for c in text if c == "\n" or unicodedata.category(c)[0] != "C")
    if one_line:
        return " ".join(text.split())
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def paragraphs(body: str) -> list[list[str]]:
    """A body as paragraphs (split by an empty line), each a list of its lines."""
    return [block.split("\n") for block in re.split(r"\n\s*\n", body) if block.strip()]


def localised(item: Bilingual, language: str) -> tuple[str, str, str]:
    """The title, body and language to show a reader of ``language`` (``zh`` or ``en``): the
    reader's own where its title is written, else the other's (the page marks it with that
    ``lang``)."""
    zh = (item.title_zh, item.body_zh, "zh")
    en = (item.title_en, item.body_en, "en")
    first, other = (zh, en) if language == "zh" else (en, zh)
    return first if first[0] else other
