"""What devices the box actually has, for the admin's device form to pick from.

Each listing copes with nothing present (no ports, no cameras, pcscd not running) by returning
an empty list and a note saying why, never by raising: the page must open on any box.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Found:
    path: str          # what goes into the device's configuration
    description: str   # what the admin reads


@dataclass(frozen=True)
class Listing:
    items: list[Found]
    note: str = ""     # why the list is empty or partial
    code: str = ""     # the same as a fixed code, for the pages to put in words


def serial_ports() -> Listing:
    try:
        from serial.tools import list_ports
        ports = list_ports.comports()
    except OSError as e:
        log.warning("cannot list serial ports: %s", e)
        return Listing([], f"cannot list serial ports: {e}", "serial_unlisted")
    items = []
    for p in sorted(ports, key=lambda p: p.device):
        desc = p.description if p.description and p.description != "n/a" else ""
        if p.serial_number:
            desc = f"{desc} (serial {p.serial_number})".strip()
        items.append(Found(p.device, desc or p.device))
    by_id = sorted(glob.glob("/dev/serial/by-id/*"))  # names that survive re-plugging
    for path in by_id:
        items.append(Found(path, f"{os.path.basename(path)} -> {os.path.realpath(path)}"))
    return Listing(items, *(("", "") if items else ("no serial ports found", "no_serial")))


def cameras() -> Listing:
    items = []
    for path in sorted(glob.glob("/dev/video*"),
                       key=lambda p: (len(p), p)):
        name_file = f"/sys/class/video4linux/{os.path.basename(path)}/name"
        try:
            with open(name_file, encoding="utf-8") as f:
                name = f.read().strip()
        except OSError:
            name = ""
        items.append(Found(path, name or path))
    return Listing(items, *(("", "") if items else (
        "no cameras (/dev/video*) found; a network camera takes its RTSP or HTTP URL",
        "no_camera")))


def pcsc_readers() -> Listing:
    try:
        from smartcard.Exceptions import SmartcardException
        from smartcard.pcsc.PCSCExceptions import BaseSCardException
        from smartcard.System import readers
    except ImportError as e:
        return Listing([], f"PC/SC support is not installed: {e}", "pcsc_missing")
    try:
        found = readers()
    except (SmartcardException, BaseSCardException) as e:
        log.info("no PC/SC readers listed: %s", e)
        return Listing([], "the PC/SC service (pcscd) is not running or has no readers",
                       "pcsc_down")
    items = [Found(str(r), str(r)) for r in found]
    return Listing(items, *(("", "") if items else ("no PC/SC readers connected",
                                                    "no_pcsc_reader")))
