"""``wicket-provision install --root``: an image's tree with the units that systemd accepts and
the directories with the modes the services expect."""

from __future__ import annotations

import shutil
import stat
import subprocess

from provisioning import units
from tests.provisioning.conftest import provision


def test_install_into_a_root_writes_verified_units_and_private_directories(tmp_path):
    root = tmp_path / "image"
    r = provision("install", "--root", str(root))
    assert r.returncode == 0, r.stderr
    assert "not created" in r.stdout and "systemctl not called" in r.stdout
    for d in ("etc/wicket", "var/lib/wicket"):
        assert stat.S_IMODE((root / d).stat().st_mode) == 0o750, d
    unit_dir = root / "etc/systemd/system"
    assert sorted(p.name for p in unit_dir.iterdir()) == sorted(units.EDGE_UNITS)
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian: systemd)"
    for name in units.EDGE_UNITS:
        path = unit_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert path.read_text() == units.render(name)
        done = subprocess.run([analyze, "verify", "--man=no", str(path)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert name not in done.stderr, done.stderr
    # a second run over the same tree changes nothing and does not fail
    assert provision("install", "--root", str(root)).returncode == 0
    assert sorted(p.name for p in unit_dir.iterdir()) == sorted(units.EDGE_UNITS)
