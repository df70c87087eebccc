"""Translations from gettext ``.po`` files, compiled in memory.

The repository keeps only the ``.po`` sources (readable, reviewable, mergeable); binary ``.mo``
files are never committed. Both the hub's and the appliance's pages load their catalogues
through :func:`translations_from_po`.
"""

from __future__ import annotations

import os
from io import BytesIO

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations


def translations_from_po(po_path: str | os.PathLike) -> Translations:
    """A ``Translations`` object built from the ``.po`` file at ``po_path``.

    Fuzzy entries are left out, as ``msgfmt`` would; a missing or malformed file raises.
    """
    with open(po_path, "rb") as f:
        catalog = read_po(f)
    buf = BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain="messages")
