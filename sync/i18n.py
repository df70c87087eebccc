"""Translations from gettext ``.po`` files, compiled in memory.

The repository keeps only the ``.po`` sources (readable, reviewable, mergeable); binary ``.mo``
files are never committed. Both the hub's and the appliance's pages load their catalogues
through :func:`translations_from_po`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from io import BytesIO

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations


def translations_from_po(po_path: str | os.PathLike) -> Translations:
    """A ``Translations`` object built from the ``.po`` file at ``po_path``.

    Fuzzy entries are left out, as ``msgfmt`` would; a missing or malformed file raises. The
    file is compiled once per process while it stays as it is (each app made gets its own
    object, read from the compiled bytes): reading and compiling it took a tenth of a second,
    at every app made.
    """
    st = os.stat(po_path)
    compiled = _compiled(os.fspath(po_path), st.st_mtime_ns, st.st_size)
    return Translations(BytesIO(compiled), domain="messages")


@lru_cache(maxsize=8)
def _compiled(po_path: str, _mtime_ns: int, _size: int) -> bytes:
    with open(po_path, "rb") as f:
        catalog = read_po(f)
    buf = BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    return buf.getvalue()
