"""The systemd units in ``systemd/``, rendered for the place Wicket is installed.

The files in the repository name the executables as ``@BINDIR@`` and the documentation as
``@DOCDIR@``: the installer fills in the directory of the running ``wicket-*`` commands (the
virtualenv's ``bin``), so the units start exactly the code that was installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

UNIT_DIR = Path(__file__).resolve().parent.parent / "systemd"
EDGE_UNITS = ("wicket-edge-web.service", "wicket-edge-gates.service", "wicket-edge-sync.service")
HUB_UNITS = ("wicket-hub.service", "wicket-hub-worker.service",
             "wicket-hub-messenger.service")  # messaging (issue 16)


def default_bindir() -> Path:
    """Where this Python's console scripts are: the virtualenv's bin directory."""
    return Path(sys.executable).parent


def default_docdir() -> Path:
    return UNIT_DIR.parent / "docs"


def render(name: str, bindir: Path | None = None, docdir: Path | None = None) -> str:
    """The text of unit ``name`` with its placeholders filled in."""
    if name not in EDGE_UNITS + HUB_UNITS:
        raise ValueError(f"no unit named {name!r}")
    text = (UNIT_DIR / name).read_text(encoding="utf-8")
    return (text.replace("@BINDIR@", str(bindir or default_bindir()))
            .replace("@DOCDIR@", str(docdir or default_docdir())))
