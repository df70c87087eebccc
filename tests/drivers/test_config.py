"""A driver's settings: unknown keys are refused, values must have the argument's type."""

from __future__ import annotations

import pytest

from drivers.settings import SettingsError, build
from drivers.usb_relay import UsbRelayTurnstile


def test_settings_become_typed_arguments():
    relay = build(UsbRelayTurnstile, "relay-1",
                  {"port": "/dev/ttyUSB0", "pulse_ms": 300, "channel_b": 2})
    assert relay.device_id == "relay-1"
    assert relay.pulse_s == 0.3
    assert relay.channels["B"] == 2


def test_unknown_missing_and_mistyped_settings_are_errors():
    with pytest.raises(SettingsError, match="unknown setting.*pulse_msec"):
        build(UsbRelayTurnstile, "relay-1", {"port": "/dev/ttyUSB0", "pulse_msec": 300})
    with pytest.raises(SettingsError, match="missing setting.*port"):
        build(UsbRelayTurnstile, "relay-1", {})
    with pytest.raises(SettingsError, match="pulse_ms: expected a whole number, got 'soon'"):
        build(UsbRelayTurnstile, "relay-1", {"port": "/dev/ttyUSB0", "pulse_ms": "soon"})
    with pytest.raises(SettingsError, match="pulse_ms: expected a whole number, got '300'"):
        build(UsbRelayTurnstile, "relay-1", {"port": "/dev/ttyUSB0", "pulse_ms": "300"})
    with pytest.raises(SettingsError, match="must be an object"):
        build(UsbRelayTurnstile, "relay-1", ["/dev/ttyUSB0"])
