"""The turnstile drivers a lane can use, by the ``model`` setting of a turnstile device: what a
page offers when a turnstile is added, each with the settings its driver declares (``FORM``,
see :mod:`drivers.settings`). Drivers are imported when asked for, not with this module."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    label: str
    help: str
    module: str
    name: str

    def driver(self) -> type:
        return getattr(importlib.import_module(self.module), self.name)


MODELS = {
    "modbus": Model("Modbus relay board",
                    "A Modbus RTU relay and input board on RS-485 (Waveshare type), wired to "
                    "the turnstile's unlock inputs and passage contacts; the board times the "
                    "unlock pulse.", "drivers.modbus_turnstile", "ModbusTurnstile"),
    "onetech": Model("RS-485 tripod (One-Tech 2B-ATT203)",
                     "A tripod turnstile driven over its own RS-485 port: it opens for one "
                     "person and answers passed or not passed.",
                     "drivers.onetech_turnstile", "OneTechTurnstile"),
    "usb_relay": Model("USB relay",
                       "An LC Technology USB relay (CH340) closing the turnstile's unlock "
                       "input; it never answers, so no passage is reported.",
                       "drivers.usb_relay", "UsbRelayTurnstile"),
}
DEFAULT_MODEL = "modbus"  # a turnstile device without a model (as edge/gates/devices.py reads)
