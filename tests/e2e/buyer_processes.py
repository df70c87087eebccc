"""What the buyer's journey runs beside the hub and reads back: the hub's long-running
commands (``wicket-hub worker``, ``wicket-hub messenger``) as processes with their output kept,
the links in a message, and the text of the QR code a ticket link's page draws."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from drivers.camera import zxing_decode
from tests.e2e.conftest import ENV, ROOT

LINK = re.compile(r"https?://[^\s<>\"]+/t/[A-Za-z0-9_-]+")


class HubCommand:
    """``wicket-hub --db URL <args>`` until stopped; its output goes to ``log``."""

    def __init__(self, db_url: str, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cloud.cli", "--db", db_url, *args], cwd=ROOT,
                env={**ENV, **env}, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """Asked to stop (SIGTERM), killed if it has not within a minute: its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def links(text: str) -> list[str]:
    """The ticket links (``…/t/<token>``) in a message, in order."""
    return LINK.findall(text)


_QR_PATH = re.compile(r'<path class="qrline"[^>]* d="([^"]+)"')
_STEP = re.compile(r"([Mmh])(-?\d+(?:\.\d+)?)(?: (-?\d+(?:\.\d+)?))?")


def qr_text(page: str) -> str:
    """The text of the one QR code a page draws as inline SVG (segno's: each dark run of a
    row is a horizontal line at the row's middle), read back by the gate cameras' decoder."""
    found = _QR_PATH.findall(page)
    assert len(found) == 1, f"{len(found)} QR codes on the page"
    x = y = 0.0
    dark: list[tuple[int, int, int]] = []  # row, first column, length
    for command, a, b in _STEP.findall(found[0]):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            dark.append((int(y), int(x), int(float(a))))
            x += float(a)
    size = max(max(row for row, _, _ in dark), max(col + n for _, col, n in dark)) + 4
    modules = np.full((size, size), 255, np.uint8)
    for row, col, n in dark:
        modules[row, col:col + n] = 0
    codes = zxing_decode(np.kron(modules, np.ones((8, 8), np.uint8)))
    assert len(codes) == 1, codes
    return codes[0]
