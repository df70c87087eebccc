"""Seats for the presale lottery's winners who did not choose their own while the window was open:
a pure function of the tier's free seats and the winners still without seats.

Words, as the rest of the hub uses them (``cloud/inventory/places.py``, ``holds.best_runs``):

- A **row** is a zone and a ``row_key`` together: best-available never joins seats of two zones,
  so neither does this. Two seats of a row are **side by side** when their positions follow on
  (``position`` and ``position + 1``); a **run** is a maximal stretch of free seats side by side.
- The rows of a zone are ordered by the best (lowest) rank of their given seats, then by
  ``row_key``; places.py ranks whole rows before the next one, so this is the venue's row order.
  Two rows are **adjacent** when they belong to one zone and no other row of the zone that has a
  given seat lies between them in that order. Only the given seats are known here: a row with no
  free seat of the tier between two rows does not separate them.
- A seat left free is **isolated** when neither of its neighbours in its row is free.

What every answer keeps: each want gets exactly its quantity of the given seats, no seat goes
twice, and the same seats and wants give the same answer whatever order the seats come in (every
choice breaks ties on ranks, positions, row keys and ids, never on input or hash order). The
wants' order is the draw's order and is part of the input. Fewer free seats than are wanted in
total is an :class:`AssignError`, as is malformed input (a seat twice, a key twice, a quantity
under 1).

How seats are chosen, in three tiers, each want in the first tier that can take it:

1. **One run of one row.** Which run each want goes into is decided on run lengths alone, largest
   quantity first (ties in the draw's order), each into a run of exactly its size if there is
   one, else into the shortest run that leaves at least two seats, else into a run one seat
   longer (leaving one isolated seat only when nothing else is left); a want is always taken from
   the run's better end (its lower-ranked end seat), so what stays free of a run is still one
   run. Wants of one seat fit anywhere, so only wants of two or more can be left over. When this
   greedy pass leaves one over, and at most :data:`SEARCH_WANTS` wants of two or more exist, an
   exhaustive search (the same choices in the same order, backtracking, at most
   :data:`SEARCH_STEPS` steps) looks for a placement of every want in one row and is used if
   found. **Promise:** whenever every want can sit in one row, each does, provided the search
   finishes within its steps; it always does for small inputs (a dozen seats, a handful of wants).
   Of runs of the length chosen, the one with the best free end seat is taken. Afterwards the
   places of each size are handed out by total rank, the best to the earliest want of that size:
   earlier wants get better rows among wants of their size; between sizes, fitting everybody in
   one row comes first.
2. **Adjacent rows.** A want left over (largest first, then in the draw's order) goes to the
   first window, in the venue's row order, of two, then three, then at most :data:`ROWS_AT_MOST`
   adjacent rows whose longest runs together hold it, one run of each row; it is split over the
   rows so as to leave the fewest isolated seats, then as evenly as possible, then more in the
   better row.
3. **Anywhere.** Run by run: a run of exactly what is still needed, else the shortest that
   leaves two or more, else the longest shorter run whole, else the one seat longer run.

Every want's seat ids come out in row order (as above) and position order within a row.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

SEARCH_WANTS = 24       # wants of two or more seats the exhaustive search takes on
SEARCH_STEPS = 50_000   # placements it tries before it gives up and keeps the greedy plan
ROWS_AT_MOST = 4        # rows one want may be split over in the adjacent-rows tier


@dataclass(frozen=True)
class FreeSeat:
    """A free seat of the tier, with its place as ``session_seats`` records it."""

    seat_id: int
    zone_id: int
    row_key: str
    position: int
    rank: int


@dataclass(frozen=True)
class Want:
    """A winner still without seats: the application's number and how many seats it won."""

    key: str
    quantity: int


class AssignError(ValueError):
    """Seats that cannot be assigned: ``code`` says why (``not_enough_seats``, ``seat_twice``,
    ``place_twice``, ``want_twice``, ``bad_quantity``), ``params`` the values it names."""

    def __init__(self, code: str, **params: object):
        self.code, self.params = code, params
        detail = ", ".join(f"{k}={v!r}" for k, v in sorted(params.items()))
        super().__init__(f"{code} ({detail})" if detail else code)


class _Run:
    """A run of free seats of one row, ordered from its better end; seats are only ever taken
    from the front, so what is left is one run."""

    __slots__ = ("index", "row", "ids", "ranks", "used")

    def __init__(self, index: int, row: int, seats: list[FreeSeat]):
        if seats[-1].rank < seats[0].rank:
            seats = seats[::-1]
        self.index, self.row, self.used = index, row, 0
        self.ids = [s.seat_id for s in seats]
        self.ranks = [s.rank for s in seats]

    @property
    def length(self) -> int:
        return len(self.ids) - self.used

    def front(self) -> tuple[int, int]:
        """The heap key among runs of one length: the better free end first."""
        return self.ranks[self.used], self.index

    def take(self, n: int) -> tuple[list[int], int]:
        """The next ``n`` seats from the front, and their total rank."""
        start, self.used = self.used, self.used + n
        return self.ids[start:self.used], sum(self.ranks[start:self.used])


class _Lengths:
    """How many runs there are of each length, and the choice of run length for a want."""

    __slots__ = ("count", "present")

    def __init__(self, lengths: list[int]):
        self.count: dict[int, int] = {}
        for n in lengths:
            if n:
                self.count[n] = self.count.get(n, 0) + 1
        self.present = sorted(self.count)

    def copy(self) -> _Lengths:
        other = _Lengths([])
        other.count, other.present = dict(self.count), list(self.present)
        return other

    def _add(self, length: int, by: int) -> None:
        if not length:
            return
        n = self.count.get(length, 0) + by
        if n:
            if by > 0 and n == 1:
                insort(self.present, length)
            self.count[length] = n
        else:
            del self.count[length]
            del self.present[bisect_left(self.present, length)]

    def take(self, length: int, n: int) -> None:
        self._add(length, -1)
        self._add(length - n, 1)

    def untake(self, length: int, n: int) -> None:
        self._add(length - n, -1)
        self._add(length, 1)

    def fit(self, q: int) -> int | None:
        """The run length a want of ``q`` goes into: exact, else the shortest leaving two or
        more, else one leaving one; None when no run is long enough."""
        if q in self.count:
            return q
        i = bisect_left(self.present, q + 2)
        if i < len(self.present):
            return self.present[i]
        return q + 1 if q + 1 in self.count else None

    def fits(self, q: int) -> list[int]:
        """Every run length a want of ``q`` may go into, in the order of :meth:`fit`."""
        out = [q] if q in self.count else []
        out += self.present[bisect_left(self.present, q + 2):]
        return out + ([q + 1] if q + 1 in self.count else [])

    def piece(self, need: int) -> int:
        """The run length to take from next when seats may be anywhere (tier 3)."""
        if need in self.count:
            return need
        i = bisect_left(self.present, need + 2)
        if i < len(self.present):
            return self.present[i]
        i = bisect_left(self.present, need) - 1
        return self.present[i] if i >= 0 else need + 1

    def state(self) -> tuple[tuple[int, int], ...]:
        return tuple(sorted(self.count.items()))


class _OutOfSteps(Exception):
    pass


def _checked(seats: Sequence[FreeSeat], wants: Sequence[Want]) -> None:
    ids: set[int] = set()
    places: set[tuple[int, str, int]] = set()
    for s in seats:
        if s.seat_id in ids:
            raise AssignError("seat_twice", seat_id=s.seat_id)
        place = (s.zone_id, s.row_key, s.position)
        if place in places:
            raise AssignError("place_twice", zone_id=s.zone_id, row_key=s.row_key,
                              position=s.position)
        ids.add(s.seat_id)
        places.add(place)
    keys: set[str] = set()
    for w in wants:
        if w.key in keys:
            raise AssignError("want_twice", key=w.key)
        if not isinstance(w.quantity, int) or isinstance(w.quantity, bool) or w.quantity < 1:
            raise AssignError("bad_quantity", key=w.key, quantity=w.quantity)
        keys.add(w.key)
    wanted = sum(w.quantity for w in wants)
    if wanted > len(seats):
        raise AssignError("not_enough_seats", wanted=wanted, free=len(seats))


def _layout(seats: Sequence[FreeSeat]) -> tuple[list[list[_Run]], list[int], list[_Run],
                                                 dict[int, int]]:
    """The rows in the venue's order (zones by their best rank, then id; rows as the module
    says), each as its runs; each row's zone; every run; each seat's place in that order."""
    by_row: dict[tuple[int, str], list[FreeSeat]] = {}
    zone_best: dict[int, int] = {}
    for s in seats:
        by_row.setdefault((s.zone_id, s.row_key), []).append(s)
        zone_best[s.zone_id] = min(zone_best.get(s.zone_id, s.rank), s.rank)
    keyed = []
    for (zone, row_key), members in by_row.items():
        members.sort(key=lambda s: s.position)
        keyed.append(((zone_best[zone], zone, min(s.rank for s in members), row_key), members))
    keyed.sort(key=lambda k: k[0])
    rows: list[list[_Run]] = []
    zone_of = [k[1] for k, _ in keyed]
    runs: list[_Run] = []
    order: dict[int, int] = {}
    for r, (_, members) in enumerate(keyed):
        rows.append([])
        start = 0
        for i, s in enumerate(members):
            order[s.seat_id] = len(order)
            if i + 1 == len(members) or members[i + 1].position != s.position + 1:
                run = _Run(len(runs), r, members[start:i + 1])
                rows[-1].append(run)
                runs.append(run)
                start = i + 1
    return rows, zone_of, runs, order


def _search(sizes: list[int], lengths: _Lengths) -> list[int] | None:
    """Run lengths that place every one of ``sizes`` (largest first) in one run, trying
    :meth:`_Lengths.fits` in order and backtracking; None if there are none or the steps run
    out. On success ``lengths`` is left as the placement leaves it."""
    failed: set[tuple[int, tuple]] = set()
    chosen: list[int] = []
    steps = [0]

    def place(i: int) -> bool:
        if i == len(sizes):
            return True
        state = (i, lengths.state())
        if state in failed:
            return False
        steps[0] += 1
        if steps[0] > SEARCH_STEPS:
            raise _OutOfSteps
        q = sizes[i]
        for length in lengths.fits(q):
            lengths.take(length, q)
            chosen.append(length)
            if place(i + 1):
                return True
            chosen.pop()
            lengths.untake(length, q)
        failed.add(state)
        return False

    try:
        return chosen if place(0) else None
    except _OutOfSteps:
        return None


def _plan_rows(runs: list[_Run], sizes: list[int]) -> list[int | None]:
    """For each of ``sizes`` (largest first), the length of the run it goes into in tier 1,
    or None for a want left to the later tiers."""
    start = _Lengths([r.length for r in runs])
    lengths = start.copy()
    plan: list[int | None] = []
    for q in sizes:
        length = lengths.fit(q)
        if length is not None:
            lengths.take(length, q)
        plan.append(length)
    big = [q for q in sizes if q > 1]
    if None not in plan or len(big) > SEARCH_WANTS:
        return plan
    lengths = start.copy()
    found = _search(big, lengths)
    if found is None:
        return plan
    plan = list(found)
    for q in sizes[len(big):]:
        length = lengths.fit(q)
        lengths.take(length, q)  # a free seat is left for every want of one
        plan.append(length)
    return plan


def _one_row(runs: list[_Run], todo: list[tuple[int, int]],
             wants: Sequence[Want]) -> tuple[dict[str, list[int]], list[tuple[int, int]]]:
    """Tier 1 for ``todo`` (want index, quantity; largest first): the seats of the wants placed,
    and the wants left over."""
    plan = _plan_rows(runs, [q for _, q in todo])
    heaps: dict[int, list[tuple[int, int]]] = {}
    for run in runs:
        heaps.setdefault(run.length, []).append(run.front())
    for heap in heaps.values():
        heapq.heapify(heap)
    places: dict[int, list[tuple[int, list[int]]]] = {}
    takers: dict[int, list[int]] = {}
    left: list[tuple[int, int]] = []
    for (w, q), length in zip(todo, plan, strict=True):
        if length is None:
            left.append((w, q))
            continue
        run = runs[heapq.heappop(heaps[length])[1]]
        ids, total = run.take(q)
        places.setdefault(q, []).append((total, ids))
        takers.setdefault(q, []).append(w)
        if run.length:
            heapq.heappush(heaps.setdefault(run.length, []), run.front())
    got: dict[str, list[int]] = {}
    for q, spots in places.items():
        spots.sort()
        for w, (_, ids) in zip(sorted(takers[q]), spots, strict=True):
            got[wants[w].key] = ids
    return got, left


def _split(q: int, caps: list[int]) -> tuple[int, ...]:
    """``q`` seats over rows whose longest runs are ``caps`` (one or more from each): fewest
    isolated seats left, then most even, then more in the earlier row."""
    k = len(caps)
    best: tuple | None = None
    for head in product(*(range(1, min(c, q - k + 1) + 1) for c in caps[:-1])):
        last = q - sum(head)
        if not 1 <= last <= caps[-1]:
            continue
        parts = (*head, last)
        key = (sum(c - p == 1 for c, p in zip(caps, parts, strict=True)), max(parts) - min(parts),
               tuple(-p for p in parts))
        if best is None or key < best[0]:
            best = (key, parts)
    assert best is not None  # sum(caps) >= q >= k and every cap >= 1
    return best[1]


def _longest(row: list[_Run]) -> _Run | None:
    free = [r for r in row if r.length]
    return min(free, key=lambda r: (-r.length, r.front())) if free else None


def _cap(row: list[_Run]) -> int:
    longest = _longest(row)
    return longest.length if longest else 0


def _adjacent_rows(rows: list[list[_Run]], zone_of: list[int], todo: list[tuple[int, int]],
                   wants: Sequence[Want]) -> tuple[dict[str, list[int]], list[tuple[int, int]]]:
    """Tier 2 for ``todo`` (largest first): the seats of the wants placed over adjacent rows,
    and the wants left over. For one quantity, a window found too small stays too small (seats
    are only taken), so each window size scans the rows once per quantity."""
    cap = [_cap(row) for row in rows]
    got: dict[str, list[int]] = {}
    left: list[tuple[int, int]] = []
    start: dict[int, int] = {}
    last_q = None
    for w, q in todo:
        if q != last_q:
            start, last_q = {}, q
        placed = False
        for k in range(2, min(q, ROWS_AT_MOST) + 1):
            s = start.get(k, 0)
            while s + k <= len(rows):
                window = range(s, s + k)
                if (zone_of[s] == zone_of[s + k - 1] and all(cap[r] for r in window)
                        and sum(cap[r] for r in window) >= q):
                    break
                s += 1
            start[k] = s
            if s + k > len(rows):
                continue
            window = range(s, s + k)
            ids: list[int] = []
            for r, part in zip(window, _split(q, [cap[r] for r in window]), strict=True):
                ids += _longest(rows[r]).take(part)[0]
                cap[r] = _cap(rows[r])
            got[wants[w].key] = ids
            placed = True
            break
        if not placed:
            left.append((w, q))
    return got, left


def _anywhere(runs: list[_Run], todo: list[tuple[int, int]],
              wants: Sequence[Want]) -> dict[str, list[int]]:
    """Tier 3: seats for every want in ``todo``, run by run as the module says. There are
    always enough: every tier takes exactly what a want wins, and the total was checked."""
    lengths = _Lengths([r.length for r in runs])
    heaps: dict[int, list[tuple[int, int]]] = {}
    for run in runs:
        if run.length:
            heaps.setdefault(run.length, []).append(run.front())
    for heap in heaps.values():
        heapq.heapify(heap)
    got: dict[str, list[int]] = {}
    for w, q in todo:
        ids: list[int] = []
        while len(ids) < q:
            length = lengths.piece(q - len(ids))
            run = runs[heapq.heappop(heaps[length])[1]]
            n = min(length, q - len(ids))
            ids += run.take(n)[0]
            lengths.take(length, n)
            if run.length:
                heapq.heappush(heaps.setdefault(run.length, []), run.front())
        got[wants[w].key] = ids
    return got


def assign(seats: Sequence[FreeSeat], wants: Sequence[Want]) -> dict[str, tuple[int, ...]]:
    """Each want's key -> its seat ids, exactly its quantity of them, in the wants' order; as
    the module says. Raises :class:`AssignError` when the seats cannot all be given out."""
    _checked(seats, wants)
    rows, zone_of, runs, order = _layout(seats)
    todo = sorted(((w, want.quantity) for w, want in enumerate(wants)),
                  key=lambda t: (-t[1], t[0]))
    got, left = _one_row(runs, todo, wants)
    if left:
        more, left = _adjacent_rows(rows, zone_of, left, wants)
        got.update(more)
    if left:
        got.update(_anywhere(runs, left, wants))
    return {w.key: tuple(sorted(got[w.key], key=order.__getitem__)) for w in wants}
