"""A lane that scans in a loop, for the crash test: each line it prints is a decision the engine
returned, that is, one whose entry was committed before the lane was told."""

from __future__ import annotations

import random
import sys

from edge import db as db_mod
from edge.engine import Engine, Scan, ScanKind
from edge.holders import HolderVault
from sync.timeutil import from_iso


def main() -> None:
    db_path, key, codes_file, at = sys.argv[1:5]
    now = from_iso(at)
    codes = [line.strip() for line in open(codes_file, encoding="ascii") if line.strip()]
    engine = Engine(db_mod.connect(db_path), HolderVault(key))
    rng = random.Random()
    print("ready", flush=True)
    while True:
        lane = rng.choice(("N1", "N2", "C1", "X1"))
        d = engine.decide(Scan(ScanKind.QR, rng.choice(codes)), lane, now)
        print(f"{d.entry_id} {d.reason}", flush=True)


if __name__ == "__main__":
    main()
