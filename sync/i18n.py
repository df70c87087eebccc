"""Translations read from .po files, compiled in memory: no binary .mo files in the repository.

Both the hub's and the appliance's pages use this with Flask-Babel.
"""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations


def translations_from_po(po_path: str | Path) -> Translations:
    with open(po_path, "rb") as f:
        catalog = read_po(f)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)
