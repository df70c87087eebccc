"""Rules both web sites must apply the same way: where a page may send a browser back to,
what a spreadsheet may find at the start of a cell, and when a server answers only its own
machine (the appliance's HTTPS and the hub's Secure cookies default on otherwise).

``local_path`` keeps a ``next`` parameter (the page to return to after signing in or switching
the language) to a path on the same site. Browsers are generous readers of a ``Location``: they
drop tabs and newlines anywhere, strip leading control characters and spaces, read ``\\`` as
``/``, and a path beginning ``//`` names another host. So a target is refused unless, as given
and after undoing any percent-encoding, it starts with exactly one ``/`` and holds no control,
format or whitespace other than the plain space, and no backslash.

``csv_cell`` neutralises text that a spreadsheet would run as a formula: a cell beginning with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a leading apostrophe
(OWASP's advice). Numbers are numbers and stay as they are. ``csv_uncell`` undoes it, so that
a file the hub exports imports again unchanged.

``whole_number`` and ``plain_text`` read a query argument as both sites' typed query helpers
do (each site words the refusal in its own catalogue).
"""

from __future__ import annotations

import csv
import ipaddress
import re
import unicodedata
from urllib.parse import unquote, urlsplit

MAX_PATH = 2048
_WHOLE = re.compile(r"-?[0-9]{1,18}", re.ASCII)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _plain(text: str) -> bool:
    if "\\" in text:
        return False
    for c in text:
        if c != " " and (c.isspace() or unicodedata.category(c)[0] in "CZ"):
            return False
    return True


def _local(text: str) -> bool:
    if not text.startswith("/") or text[1:2] in ("/", "\\"):
        return False
    parts = urlsplit(text)
    return not parts.scheme and not parts.netloc and _plain(text)


def local_path(target: object) -> str | None:
    """``target`` if it is a path on this site (``/ops?view=gates``), else None."""
    if not isinstance(target, str) or not target or len(target) > MAX_PATH:
        return None
    seen = target
    for _ in range(4):  # every layer of percent-encoding a browser or proxy might undo
        if not _local(seen):
            return None
        decoded = unquote(seen)
        if decoded == seen:
            return target
        seen = decoded
    return None  # encoded deeper than anyone means well


def csv_cell(value: object) -> object:
    """A value for a CSV cell that no spreadsheet runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_row(values) -> list:
    return [csv_cell(v) for v in values]


class CsvWriter:
    """``csv.writer`` whose every row goes through :func:`csv_cell`: the one way both sites
    write a CSV file."""

    def __init__(self, out, **options):
        self._w = csv.writer(out, **options)

    def writerow(self, values) -> None:
        self._w.writerow(csv_row(values))


def csv_uncell(text: str) -> str:
    """The text :func:`csv_cell` was given (for a file read back in)."""
    if text.startswith("'") and text[1:2] and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


def is_loopback(host: str) -> bool:
    """Whether a server bound to ``host`` answers only on its own machine."""
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_host(bind: str) -> str:
    """The host of a ``HOST:PORT`` bind (``[::1]:8000`` gives ``::1``)."""
    return bind.rpartition(":")[0].strip("[]")


def whole_number(raw: str, lo: int, hi: int) -> int | None:
    """``raw`` as a whole number from ``lo`` to ``hi`` in ASCII digits, or None. ``int()``
    alone would take ``²`` or ``١`` for a digit, or a 20-digit id the database cannot hold."""
    if not _WHOLE.fullmatch(raw):
        return None
    n = int(raw)
    return n if lo <= n <= hi else None


def plain_text(raw: str, max_length: int) -> bool:
    """Free text (a search) that is printable and at most ``max_length`` characters."""
    return len(raw) <= max_length and raw.isprintable()
