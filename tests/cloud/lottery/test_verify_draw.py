"""tools/verify_draw.py, the verifier anyone can run: a real process on real files reproduces the
hub's result byte for byte and catches a tampered result or list; the file stays short and needs
nothing but Python's standard library."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.lottery.draw import (
    DrawError,
    Entry,
    Lot,
    canonical_list,
    draw,
    list_hash,
    parse_list,
    result_file,
)

VERIFIER = Path(__file__).resolve().parents[3] / "tools" / "verify_draw.py"
SEED = "drand round 4512000 9f3c"

LOTS = [Lot(1, 21, 301, 5), Lot(2, 22, 302, 4), Lot(3, 22, 303, 1)]
ENTRIES = [Entry(f"PS{n:06d}", 1 + n % 3, 1 + n % 4) for n in range(40)]


def _verify(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(VERIFIER), *map(str, args)], capture_output=True,
                          timeout=60, check=False)


@pytest.fixture
def published(tmp_path):
    """The files a presale's public page offers: the frozen list and the hub's result."""
    data = canonical_list(12, LOTS, ENTRIES)
    applications = tmp_path / "applications.txt"
    applications.write_bytes(data)
    result = tmp_path / "result.txt"
    result.write_bytes(result_file(draw(parse_list(data), list_hash(data), SEED)))
    return applications, result, list_hash(data)


def test_the_verifier_writes_the_hubs_result_file_byte_for_byte(published):
    applications, result, digest = published
    run = _verify(applications, SEED)
    assert run.returncode == 0, run.stderr
    assert run.stdout == result.read_bytes()
    assert f"list sha256 {digest}".encode() in run.stderr


def test_the_verifier_normalises_the_seed_as_typed(published):
    applications, result, _ = published
    run = _verify(applications, "  ｄｒａｎｄ round\t4512000   9f3c ")
    assert run.returncode == 0, run.stderr
    assert run.stdout == result.read_bytes()


def test_the_verifier_says_a_published_result_matches(published):
    applications, result, digest = published
    run = _verify(applications, SEED, "--list-sha256", digest, "--result", result)
    assert (run.returncode, run.stdout) == (0, b"result matches\n"), run.stderr


def test_the_verifier_catches_a_tampered_result(published):
    applications, result, _ = published
    lines = result.read_bytes().split(b"\n")
    # line 4 is the first win; give it to an application that did not win
    lines[3] = b"win 1 PS000039 4"
    result.write_bytes(b"\n".join(lines))
    run = _verify(applications, SEED, "--result", result)
    assert run.returncode == 1
    assert b"line 4 differs" in run.stderr and b"PS000039" in run.stderr
    assert b"result matches" not in run.stdout


def test_the_verifier_catches_a_result_with_a_winner_left_out(published):
    applications, result, _ = published
    result.write_bytes(result.read_bytes().rsplit(b"win ", 1)[0])
    run = _verify(applications, SEED, "--result", result)
    assert run.returncode == 1
    assert b"differ" in run.stderr


def test_the_verifier_catches_a_result_drawn_with_another_seed(published):
    applications, result, _ = published
    run = _verify(applications, SEED + "0", "--result", result)
    assert run.returncode == 1
    assert b"line 3 differs" in run.stderr


def test_the_verifier_refuses_a_list_whose_hash_is_not_the_published_one(published):
    applications, _, digest = published
    wrong = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    run = _verify(applications, SEED, "--list-sha256", wrong)
    assert run.returncode == 1
    assert f"the list's SHA-256 is {digest}, not the published {wrong}".encode() in run.stderr
    assert run.stdout == b""


def test_the_verifier_refuses_a_list_not_in_canonical_form(published):
    applications, _, _ = published
    data = applications.read_bytes()
    applications.write_bytes(data.replace(b"app PS000000", b"app  PS000000", 1))
    run = _verify(applications, SEED)
    assert run.returncode == 1
    assert b"line 6 of the application list is not canonical" in run.stderr


def test_the_verifier_refuses_a_seed_out_of_bounds(published):
    applications, _, _ = published
    run = _verify(applications, " \t ")
    assert run.returncode == 1
    assert b"the seed must be 1 to 200 characters" in run.stderr


# --- the verifier is the specification, written again ----------------------------------------

def _verifier_module():
    spec = importlib.util.spec_from_file_location("verify_draw_under_test", VERIFIER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


presales = st.lists(st.tuples(st.from_regex(r"[A-Z0-9]{6,8}", fullmatch=True),
                              st.integers(1, 3), st.integers(1, 4)),
                    max_size=30, unique_by=lambda t: t[0])


@settings(max_examples=60)
@given(presales, st.lists(st.integers(1, 8), min_size=3, max_size=3),
       st.text(st.characters(codec="utf-8"), min_size=1, max_size=20).filter(str.strip))
def test_the_verifier_and_the_hub_draw_the_same_winners(applications, tickets, seed):
    verifier = _verifier_module()
    lots = [Lot(i, 1, 1, t) for i, t in enumerate(tickets, 1)]
    data = canonical_list(5, lots, [Entry(*a) for a in applications])
    try:
        expected = result_file(draw(parse_list(data), list_hash(data), seed))
    except DrawError:  # a seed the hub refuses (a control character): so does the verifier
        with pytest.raises(SystemExit):
            verifier.normal_seed(seed)
        return
    redrawn = verifier.draw(*verifier.read_list(data), list_hash(data), verifier.normal_seed(seed))
    assert redrawn == expected


def test_the_verifier_refuses_the_seeds_the_hub_refuses():
    verifier = _verifier_module()
    for seed in ("", "  ", "a\x00b", "x" * 201):
        with pytest.raises(SystemExit):
            verifier.normal_seed(seed)


def test_the_verifier_is_short():
    assert len(VERIFIER.read_text(encoding="utf-8").splitlines()) < 100


def test_the_verifier_imports_only_the_standard_library():
    tree = ast.parse(VERIFIER.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: the file runs on its own"
            imported.add(node.module.split(".")[0])
    assert imported, "the import reader found the verifier's imports"
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    assert not any(name in imported for name in ("cloud", "edge", "sync", "tools"))
