"""Fixtures for the drivers: a real pcscd with vsmartcard's virtual reader."""

from __future__ import annotations

import os

import pytest

from drivers.sim.pcscd import VirtualPcscd


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory):
    """pcscd with two virtual slots, started for this test run and stopped after it.

    libpcsclite reads PCSCLITE_CSOCK_NAME once, when the process first talks to PC/SC, so the
    daemon keeps its socket path for the whole run (a test that stops it starts it again)."""
    daemon = VirtualPcscd(tmp_path_factory.mktemp("pcscd"))
    os.environ.update(daemon.env)
    daemon.start()
    yield daemon
    daemon.stop()
