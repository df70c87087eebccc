"""The presale lottery at full size: the draw over a million applications, then seats for every
winner after the choosing window (as if nobody had chosen).

Two sessions × two price tiers make four lots; each lot's seats (the seat total shared out) lie
in zones of rows of 20 to 40 seats, ranked row by row and from the middle of a row outwards, as
``cloud/inventory/places.py`` ranks them; a lot's tickets are its seats. Applications ask for 1
to 4 tickets of a lot chosen at random (``random.Random`` with a fixed seed: the same figures'
inputs on every run).

- ``draw_s``: the canonical list made, parsed back, hashed and drawn (the draw fills each lot).
- ``assign_s``: seats for every winner, one ``assign`` per lot.
- ``apart``: winners whose seats are not side by side in one row; ``single_seats_left``: free
  seats with no free neighbour once everyone has seats.

    .venv/bin/python bench/lottery.py [--applications 1000000] [--seats 50000] [--seed 1]

Prints ``applications``, ``seats``, ``winners``, ``draw_s``, ``assign_s``, ``apart`` and
``single_seats_left``, one per line. Target: assign_s well under 30 for 50,000 seats.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchkit import note  # noqa: E402

from cloud.lottery.assign import FreeSeat, Want, assign  # noqa: E402
from cloud.lottery.draw import Entry, Lot, canonical_list, draw, list_hash, parse_list  # noqa: E402

SESSIONS = (1, 2)
TIERS = (1, 2)
ZONES_PER_LOT = 4
SEED_TEXT = "bench draw seed"


def lot_seats(rng: random.Random, lot_index: int, count: int, first_id: int) -> list[FreeSeat]:
    """``count`` seats in ``ZONES_PER_LOT`` zones of rows of 20 to 40 seats (the last row of
    each zone may be shorter), ranked as the venue map ranks them."""
    seats: list[FreeSeat] = []
    per_zone = [count // ZONES_PER_LOT + (z < count % ZONES_PER_LOT)
                for z in range(ZONES_PER_LOT)]
    for z, size in enumerate(per_zone):
        zone_id = lot_index * ZONES_PER_LOT + z + 1
        row = 0
        while size:
            row += 1
            width = min(size, rng.randint(20, 40))
            size -= width
            centre = (width - 1) / 2
            order = sorted(range(1, width + 1), key=lambda p: (abs(p - 1 - centre), p))
            base = len(seats)
            for rank_in_row, position in enumerate(order):
                seats.append(FreeSeat(first_id + base + rank_in_row, zone_id,
                                      f"Z{zone_id}/{row}", position, base + rank_in_row + 1))
    return seats


def build(rng: random.Random, applications: int, seat_total: int):
    lots, seats = [], {}
    pairs = [(s, t) for s in SESSIONS for t in TIERS]
    next_id = 1
    for i, (session, tier) in enumerate(pairs):
        count = seat_total // len(pairs) + (i < seat_total % len(pairs))
        seats[i + 1] = lot_seats(rng, i, count, next_id)
        next_id += count
        lots.append(Lot(i + 1, session, tier, count))
    entries = [Entry(f"A{n:09d}", rng.randint(1, len(lots)), rng.randint(1, 4))
               for n in range(1, applications + 1)]
    return lots, seats, entries


def apart_and_single(seats: list[FreeSeat], got: dict[str, tuple[int, ...]]) -> tuple[int, int]:
    by_id = {s.seat_id: s for s in seats}
    apart = 0
    for ids in got.values():
        placed = [by_id[i] for i in ids]
        positions = sorted(s.position for s in placed)
        if (len({(s.zone_id, s.row_key) for s in placed}) != 1
                or positions[-1] - positions[0] != len(placed) - 1):
            apart += 1
    taken = {i for ids in got.values() for i in ids}
    free = {(s.zone_id, s.row_key, s.position) for s in seats if s.seat_id not in taken}
    single = sum((z, r, p - 1) not in free and (z, r, p + 1) not in free for z, r, p in free)
    return apart, single


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--applications", type=int, default=1_000_000)
    p.add_argument("--seats", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    lots, seats, entries = build(rng, args.applications, args.seats)
    note(f"built {len(entries)} applications over {args.seats} seats in "
         f"{time.perf_counter() - t0:.1f}s")

    t0 = time.perf_counter()
    data = canonical_list(1, lots, entries)
    frozen = parse_list(data)
    result = draw(frozen, list_hash(data), SEED_TEXT)
    draw_s = time.perf_counter() - t0
    note(f"drew {len(result.wins)} winners in {draw_s:.1f}s")

    wants: dict[int, list[Want]] = {lot.id: [] for lot in lots}
    for win in result.wins:
        wants[win.lot_id].append(Want(win.number, win.quantity))
    t0 = time.perf_counter()
    got = {lot.id: assign(seats[lot.id], wants[lot.id]) for lot in lots}
    assign_s = time.perf_counter() - t0
    note(f"assigned seats in {assign_s:.2f}s")

    apart = single = 0
    for lot in lots:
        a, s = apart_and_single(seats[lot.id], got[lot.id])
        apart, single = apart + a, single + s
    print(f"applications: {len(entries)}")
    print(f"seats: {sum(len(s) for s in seats.values())}")
    print(f"winners: {len(result.wins)}")
    print(f"draw_s: {draw_s:.2f}")
    print(f"assign_s: {assign_s:.2f}")
    print(f"apart: {apart}")
    print(f"single_seats_left: {single}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
