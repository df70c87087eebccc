"""What counts as text in the wrong language on a page of either site, once the data (names,
codes, numbers) is taken out: the language crawl's judge (tests/e2e/test_i18n_crawl.py)."""

from __future__ import annotations

import re

# Words that are not English prose in either language: units, protocols, formats and the
# product's name, as both sites print them.
VOCABULARY = {
    "Wicket", "QR", "RFID", "UID", "ID", "Modbus", "RTU", "RS", "USB", "HTTP", "HTTPS", "TLS",
    "PDF", "CSV", "JSON", "API", "URL", "IP", "SHA", "UTC", "GMT", "CST", "ms", "s", "min", "h",
    "MB", "KB", "GB", "kB", "B", "fen", "CNY", "EUR", "USD", "PC", "SC", "OSDP", "UUID", "Ed",
    "pcscd", "RTSP", "MJPEG", "Wi", "Fi",
    "U",  # U 盘, the Chinese word for a USB stick
    "N",  # an alert rule's threshold, as its formula names it: 超过 N 秒
    "PEM", "TCP", "HID", "NFC", "JSONL", "ZIP", "bps",
    "A",  # a turnstile's direction A (B is a unit above), as its contacts are labelled
    "JPEG", "PNG",  # content (issue 17 §3): the image formats an upload may be
}
# Literal names a file must carry (the seat-map CSV's columns and values), each given with its
# Chinese gloss in brackets: "level（层）".
GLOSSED = re.compile(r"\b[a-z_]+（[^）]*）|（[a-z]+/[a-z]+）")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+")
WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
# ids, codes, hashes, times and numbers are data however they are spelt
CODE_LIKE = re.compile(r"(?<![\w-])[\w.:+/-]*\d[\w.:+/-]*"  # T00001005, N1-CAM, 12:30
                       r"|https?://\S+"                        # addresses
                       r"|(?<![\w/])/[\w.*/-]+"              # /dev/ttyUSB0, /media
                       r"|\b[a-z_]+(?:\.[a-z_]+)+\b"           # audit actions: staff.create
                       r"|\b[a-z_]+:[\w.@-]+"                  # subjects: staff:1, cli:root
                       r"|`[^`]+`"                             # a command to type
                       r"|\{.*\}", re.ASCII)                   # a record shown as JSON


def _strip_data(text: str, strings: list[str]) -> str:
    for s in strings:
        text = text.replace(s, " ")
    return CODE_LIKE.sub(" ", GLOSSED.sub(" ", text))


# Taking the data out of a line only ever puts spaces for characters: a line with no Latin
# letter (no Chinese character) has no English (Chinese) left, and is not searched for data.
LATIN = re.compile(r"[A-Za-z]")


def english_left(text: str, strings: list[str]) -> list[str]:
    found = []
    for line in text.splitlines():
        if not LATIN.search(line):
            continue
        rest = _strip_data(line, strings)
        bad = [w for w in WORD.findall(rest) if w not in VOCABULARY]
        if bad:
            found.append(f"{line.strip()!r} (english: {' '.join(bad)})")
    return found


def chinese_left(text: str, strings: list[str]) -> list[str]:
    found = []
    for line in text.splitlines():
        if not CJK.search(line):
            continue
        rest = line
        for s in strings:
            rest = rest.replace(s, " ")
        bad = CJK.findall(rest)
        if bad:
            found.append(f"{line.strip()!r} (chinese: {' '.join(bad)})")
    return found


def wrong_language(text: str, strings: list[str], lang: str) -> list[str]:
    return english_left(text, strings) if lang == "zh" else chinese_left(text, strings)
