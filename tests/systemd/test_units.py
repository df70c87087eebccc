"""The units verify with systemd's own checker once rendered for this installation, and each
keeps the hardening the deployment promises."""

from __future__ import annotations

import configparser
import shutil
import subprocess

import pytest

from provisioning import units

ALL = units.EDGE_UNITS + units.HUB_UNITS


def _parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       dict_type=dict, empty_lines_in_values=False)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read_string(text)
    return parser


@pytest.mark.parametrize("name", ALL)
def test_unit_verifies_with_systemd_analyze(name, tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian: systemd)"
    path = tmp_path / name
    path.write_text(units.render(name), encoding="utf-8")
    done = subprocess.run([analyze, "verify", "--man=no", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert name not in done.stderr, done.stderr  # warnings about the unit itself


def test_verify_catches_a_unit_whose_command_is_missing(tmp_path):
    path = tmp_path / "wicket-edge-sync.service"
    path.write_text(units.render("wicket-edge-sync.service", bindir=tmp_path / "nowhere"))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "not executable" in done.stderr


@pytest.mark.parametrize("name", ALL)
def test_unit_runs_as_a_dedicated_user_restarts_and_is_hardened(name):
    service = _parse(units.render(name))["Service"]
    assert service["User"].startswith("wicket")
    assert service["Restart"] == "always"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert service["ReadWritePaths"].split()[0].startswith("/var/lib/wicket")
    assert "@BINDIR@" not in units.render(name) and "@DOCDIR@" not in units.render(name)


def test_only_the_gate_runtime_reaches_devices_and_it_has_a_watchdog():
    for name in ALL:
        service = _parse(units.render(name))["Service"]
        if name == "wicket-edge-gates.service":
            assert service["Type"] == "notify" and int(service["WatchdogSec"]) > 0
            assert service["DevicePolicy"] == "closed"
            assert "dialout" in service["SupplementaryGroups"]
        else:
            assert "WatchdogSec" not in service
            assert service.get("PrivateDevices") == "yes" or service["DevicePolicy"] == "closed"
            assert "DeviceAllow" not in service


def test_unknown_unit_is_refused():
    with pytest.raises(ValueError, match="no unit"):
        units.render("wicket-nothing.service")
