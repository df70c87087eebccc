"""The draw's formats and algorithm (docs/lottery.md): a pinned known answer, the properties every
draw keeps, and the strict parsers' refusals, each naming its line."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.lottery.draw import (
    DrawError,
    Entry,
    Frozen,
    Lot,
    Result,
    Win,
    canonical_list,
    draw,
    list_hash,
    normal_seed,
    parse_list,
    parse_result,
    result_file,
    result_hash,
)

# --- a known answer, computed once and pinned -------------------------------------------------

LOTS = [Lot(2, 12, 102, 3), Lot(1, 11, 101, 4)]
ENTRIES = [
    Entry("K7Q2M9", 1, 2), Entry("A1B2C3", 1, 1), Entry("ZZ0001", 2, 2),
    Entry("M4N5P6", 1, 3), Entry("B00000", 2, 1), Entry("X9Y8Z7W6", 1, 1),
    Entry("C3D4E5F6G7", 2, 3), Entry("H8J9K0", 2, 1),
]
SEED = "Notary 2026-07-01 No. 48213"

PINNED_LIST = (
    b"wicket-presale-applications v1\n"
    b"presale 7\n"
    b"lot 1 11 101 4\n"
    b"lot 2 12 102 3\n"
    b"app A1B2C3 1 1\n"
    b"app B00000 2 1\n"
    b"app C3D4E5F6G7 2 3\n"
    b"app H8J9K0 2 1\n"
    b"app K7Q2M9 1 2\n"
    b"app M4N5P6 1 3\n"
    b"app X9Y8Z7W6 1 1\n"
    b"app ZZ0001 2 2\n"
)
PINNED_LIST_HASH = "2d378ea4f66ad32a8a0353dc10ae4c6e43e5982a95e44e1849e25523140a95d6"
PINNED_WINS = (Win(1, "X9Y8Z7W6", 1), Win(1, "M4N5P6", 3), Win(2, "C3D4E5F6G7", 3))
PINNED_RESULT = (
    b"wicket-presale-result v1\n"
    b"list 2d378ea4f66ad32a8a0353dc10ae4c6e43e5982a95e44e1849e25523140a95d6\n"
    b"seed Notary 2026-07-01 No. 48213\n"
    b"win 1 X9Y8Z7W6 1\n"
    b"win 1 M4N5P6 3\n"
    b"win 2 C3D4E5F6G7 3\n"
)
PINNED_RESULT_HASH = "bf8c16dcc7757504c62c3804ee9be6cb15da15696ce9ccecb8587a8687e20aac"


def test_the_known_list_is_written_and_hashed_as_pinned():
    data = canonical_list(7, LOTS, ENTRIES)
    assert data == PINNED_LIST
    assert list_hash(data) == PINNED_LIST_HASH == hashlib.sha256(PINNED_LIST).hexdigest()


def test_the_known_draw_gives_the_pinned_winners_and_result_file():
    result = draw(parse_list(PINNED_LIST), PINNED_LIST_HASH, SEED)
    assert result == Result(PINNED_LIST_HASH, SEED, PINNED_WINS)
    assert result_file(result) == PINNED_RESULT
    assert result_hash(PINNED_RESULT) == PINNED_RESULT_HASH


def _spec_winners(list_hash_hex: str, seed: str, lots, entries) -> list[tuple[int, str, int]]:
    """The winners recomputed from the specification's formulas, with hashlib and hmac only."""
    key = hashlib.sha256(b"wicket-draw v1\n" + list_hash_hex.encode() + b"\n"
                         + seed.encode("utf-8")).digest()
    wins = []
    for lot in sorted(lots, key=lambda lot: lot.id):
        order = sorted((hmac.new(key, e.number.encode("ascii"), hashlib.sha256).digest(), e.number,
                        e.quantity) for e in entries if e.lot_id == lot.id)
        remaining = lot.tickets
        for _rank, number, quantity in order:
            if remaining and quantity <= remaining:
                remaining -= quantity
                wins.append((lot.id, number, quantity))
    return wins


def test_the_pinned_winners_follow_from_the_specified_formula():
    assert [(w.lot_id, w.number, w.quantity) for w in PINNED_WINS] == \
        _spec_winners(PINNED_LIST_HASH, SEED, LOTS, ENTRIES)


def test_another_seed_or_another_list_hash_gives_another_order():
    assert draw(parse_list(PINNED_LIST), PINNED_LIST_HASH, SEED + "1").wins != PINNED_WINS
    other = canonical_list(7, LOTS, [replace(ENTRIES[0], quantity=1)] + ENTRIES[1:])
    assert draw(parse_list(other), list_hash(other), SEED).wins != PINNED_WINS


def test_an_application_too_big_is_passed_over_and_a_smaller_one_after_it_wins():
    # Lot of 3 tickets; under this seed the order is SKIPBB (2), SKIPAA (2), SKIPCC (1): SKIPAA
    # no longer fits the one ticket left, SKIPCC after it still does.
    lots = [Lot(1, 1, 1, 3)]
    entries = [Entry("SKIPAA", 1, 2), Entry("SKIPBB", 1, 2), Entry("SKIPCC", 1, 1)]
    data = canonical_list(1, lots, entries)
    key = hashlib.sha256(b"wicket-draw v1\n" + list_hash(data).encode() + b"\nskip 2").digest()
    order = sorted(entries, key=lambda e: hmac.digest(key, e.number.encode(), "sha256"))
    assert [e.number for e in order] == ["SKIPBB", "SKIPAA", "SKIPCC"]
    result = draw(parse_list(data), list_hash(data), "skip 2")
    assert result.wins == (Win(1, "SKIPBB", 2), Win(1, "SKIPCC", 1))


def test_a_lot_nobody_applied_for_has_no_winners():
    data = canonical_list(3, [Lot(1, 1, 1, 5), Lot(9, 1, 2, 5)], [Entry("ONLYONE", 1, 2)])
    assert draw(parse_list(data), list_hash(data), "x").wins == (Win(1, "ONLYONE", 2),)


# --- properties -------------------------------------------------------------------------------

numbers = st.from_regex(r"[A-Z0-9]{6,9}", fullmatch=True)


@st.composite
def presales(draw_):
    lot_ids = draw_(st.lists(st.integers(1, 60), min_size=1, max_size=4, unique=True))
    lots = [Lot(i, draw_(st.integers(1, 99)), draw_(st.integers(1, 99)), draw_(st.integers(1, 9)))
            for i in lot_ids]
    taken = draw_(st.lists(numbers, max_size=25, unique=True))
    entries = [Entry(n, draw_(st.sampled_from(lot_ids)), draw_(st.integers(1, 5))) for n in taken]
    return draw_(st.integers(1, 10**18 - 1)), lots, entries


def _valid_seed(text: str) -> bool:
    try:
        normal_seed(text)
    except DrawError:
        return False
    return True


seeds = st.text(min_size=1, max_size=30).filter(_valid_seed)


def _drawn(presale):
    data = canonical_list(*presale)
    return data, parse_list(data)


@given(presales(), seeds)
def test_no_lot_gives_more_than_its_tickets_and_every_winner_applied_for_it(presale, seed):
    data, frozen = _drawn(presale)
    result = draw(frozen, list_hash(data), seed)
    tickets = {lot.id: lot.tickets for lot in frozen.lots}
    applied = {e.number: e for e in frozen.entries}
    for lot_id in tickets:
        assert sum(w.quantity for w in result.wins if w.lot_id == lot_id) <= tickets[lot_id]
    for win in result.wins:
        assert applied[win.number] == Entry(win.number, win.lot_id, win.quantity)
    assert len({w.number for w in result.wins}) == len(result.wins)


@given(presales(), seeds)
def test_no_losing_application_would_fit_in_the_tickets_left(presale, seed):
    data, frozen = _drawn(presale)
    wins = draw(frozen, list_hash(data), seed).wins
    won = {w.number for w in wins}
    for lot in frozen.lots:
        left = lot.tickets - sum(w.quantity for w in wins if w.lot_id == lot.id)
        assert all(e.quantity > left for e in frozen.entries
                   if e.lot_id == lot.id and e.number not in won)


@given(presales(), seeds)
def test_the_draw_is_deterministic_and_follows_the_formula(presale, seed):
    data, frozen = _drawn(presale)
    first = draw(frozen, list_hash(data), seed)
    assert draw(parse_list(data), list_hash(data), seed) == first
    assert [(w.lot_id, w.number, w.quantity) for w in first.wins] == \
        _spec_winners(list_hash(data), normal_seed(seed), presale[1], presale[2])


@given(presales(), st.randoms(use_true_random=False))
def test_the_order_applications_come_in_does_not_change_the_list(presale, random):
    presale_id, lots, entries = presale
    shuffled_entries, shuffled_lots = entries[:], lots[:]
    random.shuffle(shuffled_entries)
    random.shuffle(shuffled_lots)
    assert canonical_list(presale_id, shuffled_lots, shuffled_entries) == \
        canonical_list(presale_id, lots, entries)


@given(presales(), st.data())
def test_changing_one_applications_quantity_or_number_changes_the_list_hash(presale, data):
    presale_id, lots, entries = presale
    if not entries:
        entries = [Entry("AAAAAA", lots[0].id, 1)]
    before = list_hash(canonical_list(presale_id, lots, entries))
    at = data.draw(st.integers(0, len(entries) - 1))
    others = {e.number for e in entries}
    new_number = data.draw(numbers.filter(lambda n: n not in others))
    new_quantity = data.draw(st.integers(1, 9).filter(lambda q: q != entries[at].quantity))
    for changed in (replace(entries[at], number=new_number),
                    replace(entries[at], quantity=new_quantity)):
        after = entries[:at] + [changed] + entries[at + 1:]
        assert list_hash(canonical_list(presale_id, lots, after)) != before


@given(presales())
def test_a_canonical_list_parses_back_to_what_was_written(presale):
    presale_id, lots, entries = presale
    frozen = parse_list(canonical_list(presale_id, lots, entries))
    assert frozen == Frozen(presale_id, tuple(sorted(lots, key=lambda lot: lot.id)),
                            tuple(sorted(entries, key=lambda e: e.number)))


@given(presales(), seeds)
def test_a_result_file_imports_back_as_its_own_wins(presale, seed):
    data, frozen = _drawn(presale)
    result = draw(frozen, list_hash(data), seed)
    assert parse_result(result_file(result), frozen) == result.wins


@given(st.text(max_size=40))
def test_the_seed_is_normalised_once_and_for_all(text):
    if _valid_seed(text):
        seed = normal_seed(text)
        assert normal_seed(seed) == seed
        assert normal_seed(f" \t{text}\u3000\n") == seed
        assert seed == seed.strip() and "  " not in seed


# --- the seed ---------------------------------------------------------------------------------

def test_the_seed_is_nfkc_with_whitespace_collapsed():
    assert normal_seed("  ４８２１３\u3000notary\t\n round  7 ") == "48213 notary round 7"
    assert normal_seed("ﬁ") == "fi"
    assert normal_seed("x" * 200) == "x" * 200


@pytest.mark.parametrize("text,reason", [
    ("", "empty"), (" \t\u3000\n", "empty"), ("x" * 201, "201 characters"),
    ("a\x00b", "control character"), ("a\x7fb", "control character"), (None, "text"),
])
def test_a_seed_out_of_bounds_is_refused(text, reason):
    with pytest.raises(DrawError, match=reason):
        normal_seed(text)


def test_the_draw_refuses_a_bad_seed_or_a_list_hash_not_of_its_list():
    frozen = parse_list(PINNED_LIST)
    with pytest.raises(DrawError, match="empty"):
        draw(frozen, PINNED_LIST_HASH, "   ")
    with pytest.raises(DrawError, match="not the hash of this frozen list"):
        draw(frozen, hashlib.sha256(b"another list").hexdigest(), SEED)
    with pytest.raises(DrawError, match="64 lowercase hex"):
        draw(frozen, PINNED_LIST_HASH.upper(), SEED)


def test_the_draw_normalises_the_seed_it_is_given():
    result = draw(parse_list(PINNED_LIST), PINNED_LIST_HASH, "  Notary 2026-07-01\tNo.  48213 ")
    assert result_file(result) == PINNED_RESULT


def test_a_result_with_a_seed_not_in_normal_form_is_not_written():
    with pytest.raises(DrawError, match="normal form"):
        result_file(Result(PINNED_LIST_HASH, " x ", ()))


# --- building the list ------------------------------------------------------------------------

@pytest.mark.parametrize("presale_id,lots,entries,reason", [
    (7, LOTS, ENTRIES + [Entry("A1B2C3", 2, 1)], "A1B2C3 is listed twice"),
    (7, LOTS, [Entry("A1B2C3", 3, 1)], "lot 3, which is not listed"),
    (7, LOTS, [Entry("a1b2c3", 1, 1)], "'a1b2c3' is not 6 to 20"),
    (7, LOTS, [Entry("A1B2C", 1, 1)], "'A1B2C' is not 6 to 20"),
    (7, LOTS, [Entry("A" * 21, 1, 1)], "is not 6 to 20"),
    (7, LOTS, [Entry("A1B2-C", 1, 1)], "is not 6 to 20"),
    (7, LOTS, [Entry("A1B2C3", 1, 0)], "quantity must be a whole number"),
    (7, LOTS, [Entry("A1B2C3", 1, True)], "quantity must be a whole number"),
    (7, LOTS, [Entry("A1B2C3", 1, 10**18)], "quantity must be a whole number"),
    (7, LOTS + [Lot(1, 5, 5, 5)], [], "lot 1 is listed twice"),
    (7, [Lot(1, 11, 101, 0)], [], "tickets must be a whole number"),
    (7, [Lot(-1, 11, 101, 4)], [], "lot id must be a whole number"),
    (0, LOTS, [], "presale id must be a whole number"),
])
def test_canonical_list_refuses_data_out_of_its_format(presale_id, lots, entries, reason):
    with pytest.raises(DrawError, match=reason):
        canonical_list(presale_id, lots, entries)


# --- the strict list parser -------------------------------------------------------------------

def _edit(old: bytes, new: bytes) -> bytes:
    assert old in PINNED_LIST
    return PINNED_LIST.replace(old, new, 1)


@pytest.mark.parametrize("data,line,reason", [
    (b"", 1, "empty"),
    (PINNED_LIST[:-1], 12, "does not end with a newline"),
    (b"\xef\xbb\xbf" + PINNED_LIST, 1, "expected 'wicket-presale-applications v1'"),
    (PINNED_LIST.replace(b"\n", b"\r\n"), 1, "expected 'wicket-presale-applications v1'"),
    (_edit(b"v1", b"v2"), 1, "expected 'wicket-presale-applications v1'"),
    (_edit(b"presale 7\n", b""), 2, "expected 'presale <presale_id>'"),
    (_edit(b"presale 7", b"presale 07"), 2, "presale_id '07' is not a whole number"),
    (_edit(b"lot 1 11 101 4\nlot 2 12 102 3", b"lot 2 12 102 3\nlot 1 11 101 4"), 4,
     "lot 1 is out of order"),
    (_edit(b"lot 2 12 102 3", b"lot 1 12 102 3"), 4, "lot 1 is listed twice"),
    (_edit(b"lot 2 12 102 3", b"lot 2 12 102 +3"), 4, "tickets '+3' is not a whole number"),
    (_edit(b"lot 2 12 102 3", b"lot 2 12 102 0"), 4, "tickets '0' is not a whole number"),
    (_edit(b"lot 2 12 102 3", b"lot 2 12 102"), 4, "expected 'lot <lot_id> <session_id>"),
    (_edit(b"app A1B2C3 1 1\napp B00000 2 1", b"app B00000 2 1\napp A1B2C3 1 1"), 6,
     "A1B2C3 is out of order"),
    (_edit(b"app B00000 2 1", b"app A1B2C3 2 1"), 6, "A1B2C3 is listed twice"),
    (_edit(b"app B00000 2 1", b"app B00000 2 1 "), 6, "expected 'app <number> <lot_id>"),
    (_edit(b"app B00000 2 1", b"app  B00000 2 1"), 6, "expected 'app <number> <lot_id>"),
    (_edit(b"app B00000 2 1", b"app b00000 2 1"), 6, "number 'b00000' is not 6 to 20"),
    (_edit(b"app B00000 2 1", b"app B00000 3 1"), 6, "for lot 3, which is not listed"),
    (_edit(b"app B00000 2 1", b"app B00000 2 01"), 6, "quantity '01' is not a whole number"),
    (_edit(b"app B00000 2 1", b"app B00000 2 1" + b"0" * 18), 6, "quantity '1000"),
    (_edit(b"app B00000 2 1", b"app B00000 2 \xd9\xa1"), 6, "quantity '\u0661' is not a whole"),
    (_edit(b"app B00000 2 1", b"app B00000 2 \xff"), 6, "not UTF-8"),
    (_edit(b"app B00000 2 1\n", b"app B00000 2 1\nlot 3 1 1 1\n"), 7, "a lot line after"),
    (_edit(b"app B00000 2 1\n", b"app B00000 2 1\n\n"), 7, "expected 'app <number>"),
    (_edit(b"app B00000 2 1\n", b"app B00000 2 1\nwin 2 B00000 1\n"), 7, "expected 'app <number>"),
])
def test_parse_list_refuses_anything_not_canonical_and_names_the_line(data, line, reason):
    with pytest.raises(DrawError) as refused:
        parse_list(data)
    assert str(refused.value).startswith(f"line {line}: ")
    assert reason in str(refused.value)


def test_parse_list_accepts_a_list_without_applications():
    frozen = parse_list(b"wicket-presale-applications v1\npresale 3\nlot 5 1 1 10\n")
    assert frozen == Frozen(3, (Lot(5, 1, 1, 10),), ())


@given(st.binary(max_size=300))
def test_parse_list_raises_only_draw_errors_on_any_bytes(data):
    try:
        frozen = parse_list(PINNED_LIST[:60] + data)
    except DrawError:
        return
    assert canonical_list(frozen.presale_id, frozen.lots, frozen.entries) == PINNED_LIST[:60] + data


# --- importing a result drawn elsewhere -------------------------------------------------------

FROZEN = parse_list(PINNED_LIST)


def test_an_imported_result_is_read_with_or_without_its_header():
    wins = (Win(2, "ZZ0001", 2), Win(1, "K7Q2M9", 2), Win(2, "B00000", 1), Win(1, "A1B2C3", 1))
    text = b"win 2 ZZ0001 2\nwin 1 K7Q2M9 2\nwin 2 B00000 1\nwin 1 A1B2C3 1\n"
    assert parse_result(text, FROZEN) == wins
    header = f"wicket-presale-result v1\nlist {PINNED_LIST_HASH}\nseed notary 1\n".encode()
    assert parse_result(header + text, FROZEN) == wins
    assert parse_result(b"", FROZEN) == ()


def test_an_imported_result_may_come_with_a_bom_crlf_and_no_last_newline():
    text = b"\xef\xbb\xbfwin 2 ZZ0001 2\r\nwin 1 K7Q2M9 2"
    assert parse_result(text, FROZEN) == (Win(2, "ZZ0001", 2), Win(1, "K7Q2M9", 2))


@pytest.mark.parametrize("text,line,reason", [
    (b"win 1 A1B2C3 1\nwin 1 NOSUCH1 1\n", 2, "NOSUCH1 is not a frozen application"),
    (b"win 2 A1B2C3 1\n", 1, "A1B2C3 applied for lot 1, not lot 2"),
    (b"win 1 K7Q2M9 1\n", 1, "K7Q2M9 applied for 2 tickets, not 1"),
    (b"win 1 A1B2C3 1\nwin 1 K7Q2M9 2\nwin 1 A1B2C3 1\n", 3, "A1B2C3 already won on line 1"),
    (b"win 1 K7Q2M9 2\nwin 1 M4N5P6 3\n", 2, "lot 1 has 4 tickets and the wins so far take 5"),
    (b"win 2 ZZ0001 2\nwin 2 H8J9K0 1\nwin 2 B00000 1\n", 3, "lot 2 has 3 tickets"),
    (b"win 1 A1B2C3\n", 1, "expected 'win <lot_id> <number> <quantity>'"),
    (b"win 1 A1B2C3 1 extra\n", 1, "expected 'win <lot_id> <number> <quantity>'"),
    (b"win 01 A1B2C3 1\n", 1, "lot_id '01' is not a whole number"),
    (b"win 1 a1b2c3 1\n", 1, "number 'a1b2c3' is not 6 to 20"),
    (b"win 1 A1B2C3 1\n\n", 2, "expected 'win <lot_id>"),
    (b"win 1 A1B2C3 1\nwicket-presale-result v1\n", 2, "expected 'win <lot_id>"),
    (b"wicket-presale-result v1\nlist " + b"0" * 64 + b"\nseed x\n", 2,
     "(the frozen list's hash)"),
    (f"wicket-presale-result v1\nlist {PINNED_LIST_HASH}\nwin 1 A1B2C3 1\n".encode(), 3,
     "expected 'seed <seed>'"),
    (f"wicket-presale-result v1\nlist {PINNED_LIST_HASH}\nseed  x\n".encode(), 3,
     "not in its normal form"),
    (b"win 1 A1B2C3 1\nwin 1 \xff 1\n", 2, "not UTF-8"),
])
def test_an_imported_result_is_refused_at_its_first_bad_line(text, line, reason):
    with pytest.raises(DrawError) as refused:
        parse_result(text, FROZEN)
    assert str(refused.value).startswith(f"line {line}: ")
    assert reason in str(refused.value)


def test_an_import_is_checked_against_a_frozen_list_that_holds_together():
    broken = Frozen(7, (Lot(1, 1, 1, 4),), (Entry("A1B2C3", 2, 1),))
    with pytest.raises(DrawError, match="lot 2, which is not listed"):
        parse_result(b"win 2 A1B2C3 1\n", broken)


def test_the_specifications_test_vector_is_the_pinned_one():
    page = (Path(__file__).resolve().parents[3] / "docs" / "lottery.md").read_text(encoding="utf-8")
    blocks = [block.encode() for block in re.findall(r"```\n(.*?)```", page, re.S)]
    assert PINNED_LIST in blocks
    assert PINNED_RESULT in blocks
    assert PINNED_LIST_HASH in page and PINNED_RESULT_HASH in page and SEED in page
