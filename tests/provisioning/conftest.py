"""``wicket-provision`` as a field tech runs it: a real process, against a real hub process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ENV, ROOT, hub  # noqa: F401  (the hub process fixture)


def provision(*args: str, config: Path | None = None, input: str | None = None,
              env: dict | None = None, prefix: tuple[str, ...] = (),
              timeout: float = 180) -> subprocess.CompletedProcess:
    cmd = [*prefix, sys.executable, "-m", "provisioning.cli"]
    if config is not None:
        cmd += ["--config", str(config)]
    return subprocess.run([*cmd, *args], cwd=ROOT, env={**ENV, **(env or {})},
                          capture_output=True, text=True, input=input, timeout=timeout)


@pytest.fixture
def box(tmp_path) -> Path:
    """Where a box's configuration goes (the database and credential land beside it)."""
    directory = tmp_path / "box"
    directory.mkdir()
    return directory / "edge.toml"
