"""Every serial driver: open and close are idempotent, a closed driver refuses work with a
PermanentError and says DOWN, and reopening works."""

from __future__ import annotations

import pytest

from drivers.base import DeviceState, PermanentError
from drivers.idcard import IdCardReader
from drivers.modbus_turnstile import ModbusTurnstile
from drivers.onetech_turnstile import OneTechTurnstile
from drivers.osdp_reader import OsdpReader
from drivers.serial_scanner import SerialScanner
from drivers.sim.idcard import IdCardReaderSim
from drivers.sim.modbus_board import ModbusBoardSim
from drivers.sim.onetech_turnstile import OneTechTurnstileSim
from drivers.sim.osdp_reader import OsdpReaderSim
from drivers.sim.serial_scanner import SerialScannerSim
from drivers.sim.usb_relay import UsbRelaySim
from drivers.usb_relay import UsbRelayTurnstile

CASES = [
    (ModbusBoardSim, ModbusTurnstile, "poll"),
    (OneTechTurnstileSim, OneTechTurnstile, "poll"),
    (UsbRelaySim, UsbRelayTurnstile, "poll"),
    (IdCardReaderSim, IdCardReader, "read"),
    (SerialScannerSim, SerialScanner, "read"),
    (OsdpReaderSim, OsdpReader, "read"),
]


@pytest.mark.parametrize("sim_cls, driver_cls, work", CASES,
                         ids=[c[1].__name__ for c in CASES])
def test_open_close_reopen(tmp_path, sim_cls, driver_cls, work):
    with sim_cls(link=str(tmp_path / "tty")) as sim:
        driver = driver_cls("dev-1", sim.port)
        assert driver.health().state is DeviceState.UNKNOWN
        driver.open()
        driver.open()
        assert driver.health().state is DeviceState.UP
        assert getattr(driver, work)(0.05) in ([], None)
        driver.close()
        driver.close()
        assert driver.health().state is DeviceState.DOWN
        with pytest.raises(PermanentError, match="not open"):
            getattr(driver, work)(0.05)
        driver.open()
        assert getattr(driver, work)(0.05) in ([], None)
        assert driver.health().state is DeviceState.UP
        driver.close()
