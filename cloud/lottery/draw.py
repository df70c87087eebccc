"""The presale lottery's draw: the frozen application list as canonical bytes, and the winners as
a pure function of those bytes' SHA-256 and a seed fixed after the list was published.

Nothing here touches a database or a clock. The same list hash and the same seed give the same
winners on any machine, and ``tools/verify_draw.py`` redraws them from the published files alone.
The formats and the algorithm are specified in ``docs/lottery.md``; a change to one is a change
to both (and to the verifier, which is written from that text, not from this module).

Every refusal of data is a :class:`DrawError` whose message says what is wrong, and for a file,
on which line: bytes of any kind handed to a parser raise nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

LIST_HEADER = "wicket-presale-applications v1"
RESULT_HEADER = "wicket-presale-result v1"
KEY_PREFIX = b"wicket-draw v1\n"
SEED_MAX_CHARS = 200
INT_MAX = 10**18 - 1          # at most 18 digits: every id and count fits a signed 64-bit integer

_INT = r"[1-9][0-9]{0,17}"
_NUMBER_RE = r"[A-Z0-9]{6,20}"
_int_text = re.compile(_INT).fullmatch
_number_text = re.compile(_NUMBER_RE).fullmatch
_hash_text = re.compile(r"[0-9a-f]{64}").fullmatch
_presale_line = re.compile(f"presale ({_INT})").fullmatch
_lot_line = re.compile(f"lot ({_INT}) ({_INT}) ({_INT}) ({_INT})").fullmatch
_app_line = re.compile(f"app ({_NUMBER_RE}) ({_INT}) ({_INT})").fullmatch

_LOT_FIELDS = ("lot_id", "session_id", "price_tier_id", "tickets")
_APP_FIELDS = ("number", "lot_id", "quantity")
_WIN_FIELDS = ("lot_id", "number", "quantity")


class DrawError(ValueError):
    """Data the draw refuses: a list or result that is not in its specified form, an application
    that does not fit the list, or a seed out of bounds. The message names the line, if any."""


@dataclass(frozen=True)
class Lot:
    """What a lot offers: ``tickets`` seats of one price tier of one session."""

    id: int
    session_id: int
    price_tier_id: int
    tickets: int


@dataclass(frozen=True)
class Entry:
    """A frozen application, known publicly by its ``number``: ``quantity`` tickets of a lot."""

    number: str
    lot_id: int
    quantity: int


@dataclass(frozen=True)
class Frozen:
    """The application list as frozen before the draw (lots by id, entries by number)."""

    presale_id: int
    lots: tuple[Lot, ...]
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Win:
    lot_id: int
    number: str
    quantity: int


@dataclass(frozen=True)
class Result:
    """A draw's outcome; ``wins`` in result-file order (lot by lot, each lot in draw order)."""

    list_hash: str
    seed: str
    wins: tuple[Win, ...]


# --- the application list ---------------------------------------------------------------------

def _whole(value: object, what: str) -> int:
    if type(value) is not int or not 0 < value <= INT_MAX:
        raise DrawError(f"{what} must be a whole number from 1 to {INT_MAX}, not {value!r}")
    return value


def _checked_number(value: object) -> str:
    if type(value) is not str or not _number_text(value):
        raise DrawError(f"application number {value!r} is not 6 to 20 of A-Z and 0-9")
    return value


def canonical_list(presale_id: int, lots: Iterable[Lot], entries: Iterable[Entry]) -> bytes:
    """The list's one canonical form: lots by id, applications by number. Refuses (DrawError) a
    duplicate lot or number, an application for a lot not listed, and any value out of format."""
    _whole(presale_id, "presale id")
    lots = sorted(lots, key=lambda lot: _whole(lot.id, "lot id"))
    lines = [f"{LIST_HEADER}\npresale {presale_id}\n"]
    known = set()
    for lot in lots:
        if lot.id in known:
            raise DrawError(f"lot {lot.id} is listed twice")
        known.add(lot.id)
        for field in _LOT_FIELDS[1:]:
            _whole(getattr(lot, field), f"lot {lot.id}'s {field}")
        lines.append(f"lot {lot.id} {lot.session_id} {lot.price_tier_id} {lot.tickets}\n")
    entries = sorted(entries, key=lambda entry: _checked_number(entry.number))
    previous = None
    for entry in entries:
        number = entry.number
        if number == previous:
            raise DrawError(f"application number {number} is listed twice")
        previous = number
        if type(entry.lot_id) is not int or entry.lot_id not in known:
            raise DrawError(f"application {number} is for lot {entry.lot_id!r}, "
                            "which is not listed")
        _whole(entry.quantity, f"application {number}'s quantity")
    lines.extend(f"app {e.number} {e.lot_id} {e.quantity}\n" for e in entries)
    return "".join(lines).encode("ascii")


def _text_lines(data: bytes, what: str) -> list[str]:
    """The lines of a file under the line rules: UTF-8, every line ended by a newline."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DrawError(f"the {what} must be bytes, not {type(data).__name__}")
    data = bytes(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DrawError(f"line {line}: not UTF-8") from None
    if not text:
        raise DrawError(f"line 1: the {what} is empty")
    if not text.endswith("\n"):
        raise DrawError(f"line {text.count(chr(10)) + 1}: does not end with a newline")
    return text.split("\n")[:-1]


def _diagnose(line: str, n: int, kind: str, names: tuple[str, ...]) -> None:
    """Raise the reason ``line`` is not a well-formed ``kind`` line (only called on a misfit)."""
    shape = " ".join([kind] + [f"<{name}>" for name in names])
    parts = line.split(" ")
    if parts[0] != kind or len(parts) != len(names) + 1:
        raise DrawError(f"line {n}: expected '{shape}', found {line!r}")
    for name, value in zip(names, parts[1:], strict=True):
        if name == "number" and not _number_text(value):
            raise DrawError(f"line {n}: application number {value!r} is not 6 to 20 of A-Z and 0-9")
        if name != "number" and not _int_text(value):
            raise DrawError(f"line {n}: {name} {value!r} is not a whole number from 1 to "
                            f"{INT_MAX} in plain decimal")
    raise DrawError(f"line {n}: expected '{shape}', found {line!r}")  # pragma: no cover


def _parse_lots(lines: list[str]) -> tuple[list[Lot], int]:
    """The lot lines from line 3 on, and the index of the first line after them."""
    lots: list[Lot] = []
    at = 2
    while at < len(lines) and lines[at].startswith("lot "):
        match = _lot_line(lines[at]) or _diagnose(lines[at], at + 1, "lot", _LOT_FIELDS)
        lot = Lot(*map(int, match.groups()))
        if lots and lot.id <= lots[-1].id:
            order = "listed twice" if lot.id == lots[-1].id else "out of order (ids ascend)"
            raise DrawError(f"line {at + 1}: lot {lot.id} is {order}")
        lots.append(lot)
        at += 1
    return lots, at


def parse_list(data: bytes) -> Frozen:
    """The frozen list in ``data``, which must be exactly canonical (as :func:`canonical_list`
    writes it): anything else is refused with a DrawError naming the first bad line."""
    lines = _text_lines(data, "application list")
    if lines[0] != LIST_HEADER:
        raise DrawError(f"line 1: expected '{LIST_HEADER}', found {lines[0]!r}")
    presale = _presale_line(lines[1]) if len(lines) > 1 else None
    if presale is None:
        _diagnose(lines[1] if len(lines) > 1 else "", 2, "presale", ("presale_id",))
    lots, at = _parse_lots(lines)
    lot_ids = {lot.id for lot in lots}
    entries = []
    previous = ""
    for n, line in enumerate(lines[at:], at + 1):
        match = _app_line(line)
        if match is None:
            if line.startswith("lot "):
                raise DrawError(f"line {n}: a lot line after the applications")
            _diagnose(line, n, "app", _APP_FIELDS)
        number, lot, quantity = match.groups()
        if number <= previous:
            order = "listed twice" if number == previous else "out of order (numbers ascend)"
            raise DrawError(f"line {n}: application number {number} is {order}")
        previous = number
        lot_id = int(lot)
        if lot_id not in lot_ids:
            raise DrawError(f"line {n}: application {number} is for lot {lot_id}, "
                            "which is not listed")
        entries.append(Entry(number, lot_id, int(quantity)))
    return Frozen(int(presale[1]), tuple(lots), tuple(entries))


def list_hash(data: bytes) -> str:
    """The list hash: the SHA-256 of the canonical list's bytes, in lowercase hex."""
    return hashlib.sha256(data).hexdigest()


# --- the draw ---------------------------------------------------------------------------------

def normal_seed(text: str) -> str:
    """The seed as the draw uses it: NFKC, whitespace trimmed and each run of it made one space.
    Two people typing the same value get the same seed; empty or over 200 characters, or with a
    control character left in it, is refused."""
    if not isinstance(text, str):
        raise DrawError(f"the seed must be text, not {type(text).__name__}")
    seed = " ".join(unicodedata.normalize("NFKC", text).split())
    if not seed:
        raise DrawError("the seed is empty")
    if len(seed) > SEED_MAX_CHARS:
        raise DrawError(f"the seed has {len(seed)} characters; "
                        f"at most {SEED_MAX_CHARS} are allowed")
    if any(unicodedata.category(char) == "Cc" for char in seed):
        raise DrawError("the seed contains a control character")
    return seed


def _key(list_hash_hex: str, seed: str) -> bytes:
    return hashlib.sha256(KEY_PREFIX + list_hash_hex.encode("ascii") + b"\n"
                          + seed.encode("utf-8")).digest()


def _checked_hash(value: object, what: str) -> str:
    if type(value) is not str or not _hash_text(value):
        raise DrawError(f"the {what} must be 64 lowercase hex digits, not {value!r}")
    return value


def draw(frozen: Frozen, list_hash: str, seed: str) -> Result:
    """The winners of every lot: each lot's applications ranked by HMAC-SHA256 of their number
    under a key made from the list hash and the seed, then taken in that order while they fit the
    tickets left (one too big is passed over, and a smaller one after it may still win).

    ``list_hash`` must be the hash of ``frozen``'s canonical list: it is recomputed, so a result
    never names a list it was not drawn from."""
    _checked_hash(list_hash, "list hash")
    seed = normal_seed(seed)
    canonical = canonical_list(frozen.presale_id, frozen.lots, frozen.entries)
    if hashlib.sha256(canonical).hexdigest() != list_hash:
        raise DrawError(f"the list hash {list_hash} is not the hash of this frozen list")
    keyed = hmac.new(_key(list_hash, seed), digestmod=hashlib.sha256)

    def rank(entry: Entry) -> bytes:
        # the rank value, then the number: bytes order is (rank value, number) order
        number = entry.number.encode("ascii")
        mac = keyed.copy()
        mac.update(number)
        return mac.digest() + number

    applied: dict[int, list[Entry]] = {lot.id: [] for lot in frozen.lots}
    for entry in frozen.entries:
        applied[entry.lot_id].append(entry)
    wins = []
    for lot in sorted(frozen.lots, key=lambda lot: lot.id):
        remaining = lot.tickets
        for entry in sorted(applied[lot.id], key=rank):
            if remaining == 0:
                break
            if entry.quantity <= remaining:
                remaining -= entry.quantity
                wins.append(Win(lot.id, entry.number, entry.quantity))
    return Result(list_hash, seed, tuple(wins))


def result_file(result: Result) -> bytes:
    """The published result: header, list hash, seed, then one line per win in ``result.wins``'s
    order."""
    _checked_hash(result.list_hash, "list hash")
    if normal_seed(result.seed) != result.seed:
        raise DrawError(f"the seed {result.seed!r} is not in its normal form")
    lines = [f"{RESULT_HEADER}\nlist {result.list_hash}\nseed {result.seed}\n"]
    for win in result.wins:
        _whole(win.lot_id, "a win's lot id")
        _whole(win.quantity, f"win {win.number!r}'s quantity")
        lines.append(f"win {win.lot_id} {_checked_number(win.number)} {win.quantity}\n")
    return "".join(lines).encode("utf-8")


def result_hash(data: bytes) -> str:
    """The result hash: the SHA-256 of the result file's bytes, in lowercase hex."""
    return hashlib.sha256(data).hexdigest()


# --- importing a result drawn elsewhere -------------------------------------------------------

def _import_lines(data: bytes) -> list[str]:
    """Lines of an imported result. Tolerant of what other programs write (a BOM, CRLF, a last
    line without a newline); the lines themselves are still checked strictly."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DrawError(f"the result must be bytes, not {type(data).__name__}")
    data = bytes(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DrawError(f"line {line}: not UTF-8") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _check_header(lines: list[str], expected: str) -> int:
    """How many header lines the import starts with (0 or 3); those present must match."""
    if not lines or lines[0] != RESULT_HEADER:
        return 0
    if len(lines) < 2 or lines[1] != f"list {expected}":
        found = lines[1] if len(lines) > 1 else "nothing"
        raise DrawError(f"line 2: expected 'list {expected}' (the frozen list's hash), "
                        f"found {found!r}")
    if len(lines) < 3 or not lines[2].startswith("seed "):
        raise DrawError("line 3: expected 'seed <seed>' after the list hash")
    seed = lines[2][len("seed "):]
    if normal_seed(seed) != seed:
        raise DrawError(f"line 3: the seed {seed!r} is not in its normal form")
    return 3


def parse_result(data: bytes, frozen: Frozen) -> tuple[Win, ...]:
    """The wins of a result drawn elsewhere (a notarised draw), checked against the frozen list:
    every number is an application of that lot for that quantity, none twice, and no lot gives
    more tickets than it has. The first failure is a DrawError naming its line."""
    # the frozen list is checked whole first (a Frozen may have been built by hand)
    expected = list_hash(canonical_list(frozen.presale_id, frozen.lots, frozen.entries))
    lines = _import_lines(data)
    at = _check_header(lines, expected)
    lots = {lot.id: lot for lot in frozen.lots}
    entries = {entry.number: entry for entry in frozen.entries}
    seen: dict[str, int] = {}
    given = dict.fromkeys(lots, 0)
    wins = []
    for n, line in enumerate(lines[at:], at + 1):
        parts = line.split(" ")
        if len(parts) != 4 or parts[0] != "win" or not _number_text(parts[2]) \
                or not (_int_text(parts[1]) and _int_text(parts[3])):
            _diagnose(line, n, "win", _WIN_FIELDS)
        win = Win(int(parts[1]), parts[2], int(parts[3]))
        entry = entries.get(win.number)
        if entry is None:
            raise DrawError(f"line {n}: {win.number} is not a frozen application")
        if entry.lot_id != win.lot_id:
            raise DrawError(f"line {n}: {win.number} applied for lot {entry.lot_id}, "
                            f"not lot {win.lot_id}")
        if entry.quantity != win.quantity:
            raise DrawError(f"line {n}: {win.number} applied for {entry.quantity} tickets, "
                            f"not {win.quantity}")
        if win.number in seen:
            raise DrawError(f"line {n}: {win.number} already won on line {seen[win.number]}")
        seen[win.number] = n
        given[win.lot_id] += win.quantity
        if given[win.lot_id] > lots[win.lot_id].tickets:
            raise DrawError(f"line {n}: lot {win.lot_id} has {lots[win.lot_id].tickets} tickets "
                            f"and the wins so far take {given[win.lot_id]}")
        wins.append(win)
    return tuple(wins)
