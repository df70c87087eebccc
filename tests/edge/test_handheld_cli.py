"""`wicket-edge handheld`: a pairing code from the command line, the list, and revoking."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from edge import config as config_mod
from edge import db as db_mod
from edge import handhelds

ROOT = Path(__file__).resolve().parents[2]


def run(cfg, *args, code=0):
    proc = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(cfg), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_code_pair_list_and_revoke(tmp_path, loaded, db_path, holder_key):
    cfg = tmp_path / "edge.toml"
    config_mod.write_new(cfg, {"database": str(db_path), "holder_key": holder_key})
    out = run(cfg, "handheld", "code", "--name", "Gate 1 PDA", "--lane", "N1", "--lane", "N2")
    code = re.search(r"pairing code ([A-Z2-9]{4}-[A-Z2-9]{4})", out).group(1)
    assert "N1, N2" in out
    conn = db_mod.connect(db_path)
    paired = handhelds.pair(conn, code)
    listing = run(cfg, "handheld", "list")
    assert paired.device_id in listing and "paired" in listing and "N1,N2" in listing
    assert "1 token(s) revoked" in run(cfg, "handheld", "revoke", paired.device_id)
    assert "revoked" in run(cfg, "handheld", "list")
    assert "no such lane: Q9" in run(cfg, "handheld", "code", "--name", "x", "--lane", "Q9",
                                     code=2)
    assert "a handheld needs a name" in run(cfg, "handheld", "code", code=2)
