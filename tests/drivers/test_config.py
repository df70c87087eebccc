"""A driver's settings: unknown keys are refused, values take the argument's type."""

from __future__ import annotations

import pytest

from drivers.config import build
from drivers.usb_relay import UsbRelayTurnstile


def test_settings_become_typed_arguments():
    relay = build(UsbRelayTurnstile, "relay-1",
                  {"port": "/dev/ttyUSB0", "pulse_ms": "300", "channel_b": 2})
    assert relay.device_id == "relay-1"
    assert relay.pulse_s == 0.3
    assert relay.channels["B"] == 2


def test_unknown_and_missing_settings_are_errors():
    with pytest.raises(ValueError, match="unknown settings pulse_msec"):
        build(UsbRelayTurnstile, "relay-1", {"port": "/dev/ttyUSB0", "pulse_msec": 300})
    with pytest.raises(ValueError, match="missing settings port"):
        build(UsbRelayTurnstile, "relay-1", {})
    with pytest.raises(ValueError, match="pulse_ms='soon'"):
        build(UsbRelayTurnstile, "relay-1", {"port": "/dev/ttyUSB0", "pulse_ms": "soon"})
