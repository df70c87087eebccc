"""The shared web rules: a ``next`` target stays on the site, a CSV cell is never a formula."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync import websafe
from sync.websafe import csv_cell, csv_row, csv_uncell, local_path

# Targets as they reach the page (the query string already decoded once), each of which a
# browser follows to another site or reads as a script.
BYPASSES = [
    "//evil.example", "///evil.example", "/\\evil.example", "\\/evil.example",
    "\\\\evil.example", "/\t/evil.example", "/\n/evil.example", "/\r/evil.example",
    "\t//evil.example", " //evil.example", "/ \t/evil.example", "\x00//evil.example",
    "/\x00/evil.example", "/\x1f/evil.example", "/\x7f/evil.example", "/\u200b/evil.example",
    "/\u3000/evil.example", "/\u2028/evil.example", "/\ufeff/evil.example",
    "https://evil.example", "http:evil.example", "https:/evil.example", "//evil.example@x",
    "/%2F%2Fevil.example", "/%2F/evil.example", "/%5Cevil.example", "/%5C%5Cevil.example",
    "/%09/evil.example", "/%252F%252Fevil.example", "/%25252F%25252Fevil.example",
    "/%0a/evil.example", "/%00/evil.example", "%2F%2Fevil.example",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "evil.example", "", None, 42,
    "/" + "a" * 5000,
]
LOCAL = ["/", "/gate/?lane=N1", "/tickets?number=T1", "/ops?view=gates&since=2026-01-01",
         "/venues/3/seats", "/ops?q=%E5%BC%A0", "/entries?q=a b"]


@pytest.mark.parametrize("target", BYPASSES, ids=repr)
def test_no_known_bypass_leaves_the_site(target):
    assert local_path(target) is None


@pytest.mark.parametrize("target", LOCAL)
def test_local_paths_are_kept_as_given(target):
    assert local_path(target) == target


@given(st.text(max_size=60))
def test_whatever_is_kept_is_one_slash_then_no_host(text):
    kept = local_path(text)
    if kept is not None:
        assert kept.startswith("/") and kept[1:2] not in ("/", "\\")
        assert not any(c in kept for c in "\t\r\n\x00\\")


@pytest.mark.parametrize("cell", ["=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1",
                                  "=HYPERLINK(\"http://evil.example\")", "-2+3+cmd|' /C calc'!A0"])
def test_formula_cells_are_neutralised_and_read_back(cell):
    safe = csv_cell(cell)
    assert safe == "'" + cell
    assert csv_uncell(safe) == cell
    out = io.StringIO()
    csv.writer(out).writerow(csv_row(["ok", cell, 5, -3.5]))
    row = next(csv.reader(io.StringIO(out.getvalue())))
    assert row == ["ok", "'" + cell, "5", "-3.5"]  # numbers stay numbers


@pytest.mark.parametrize("cell", ["", "plain", "A1", "'quoted", "1-2", "张三", 7, None, -1.5])
def test_other_cells_are_left_alone(cell):
    assert csv_cell(cell) == cell
    if isinstance(cell, str):
        assert csv_uncell(cell) == cell


def test_a_query_number_is_ascii_digits_within_its_range():
    assert websafe.whole_number("42", 1, 100) == 42
    assert websafe.whole_number("-5", -10, 0) == -5
    for raw in ("²", "١٢", "4.0", "1e3", "", " 4", "0x10", "1" * 19, "101", "0"):
        assert websafe.whole_number(raw, 1, 100) is None, raw
    assert websafe.plain_text("Gate 1", 10) and not websafe.plain_text("a\x00b", 10)
    assert not websafe.plain_text("x" * 11, 10)
