"""A statement's CSV and PDF, on both databases: every line of the statement, a total that is
the statement's (and the ledger's), and the PDF's words in the language asked for, drawn in
the built-in Chinese font."""

from __future__ import annotations

import base64
import csv
import io
import re
import zlib

import pytest

from cloud.ledger import chart
from cloud.ledger.journal import balance
from cloud.ledger.partners import edit_partner
from cloud.ledger.settlement import mark_paid, run_settlement, statement_lines, statements
from cloud.ledger.statement_files import money, statement_csv, statement_pdf
from tests.cloud.ledger.settlekit import day, refund, sell, set_up


@pytest.fixture
def org_statement(engine):
    """ORG's statement of two sales and a partial refund, marked paid."""
    with engine.begin() as conn:
        ids = set_up(conn)
        edit_partner(conn, ids["ORG"], actor="fin", now=day(0), name="春季音乐会 Spring")
        first = sell(conn, 1, 10000, day(0))
        sell(conn, 2, 3333, day(0.2))
        refund(conn, first, 1, 4000, day(0.4))
    run_id = run_settlement(engine, day(8), "maker", day(8))
    with engine.begin() as conn:
        org = next(s for s in statements(conn, run_id=run_id) if s.partner_code == "ORG")
        mark_paid(conn, org.id, "BANK-77", "checker", day(9))
        return ids["ORG"], org.id


_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(literal: bytes) -> bytes:
    def one(m: re.Match) -> bytes:
        s = m.group(1)
        return bytes([int(s, 8)]) if s[:1].isdigit() else _ESCAPES.get(s, s)
    return re.sub(rb"\\([0-7]{1,3}|.)", one, literal, flags=re.S)


def pdf_text(data: bytes) -> list[str]:
    """The strings a PDF shows, in order (every one is in the UCS-2 CID font)."""
    shown = []
    for m in re.finditer(rb"stream\r?\n(.*?)~>endstream", data, re.S):
        content = zlib.decompress(base64.a85decode(m.group(1).replace(b"\n", b"")))
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\) Tj", content, re.S):
            shown.append(_unescape(literal).decode("utf-16-be"))
    return shown


def test_money_is_printed_in_main_units():
    assert [money(a) for a in (0, 5, 100, -3376, 123456789)] == [
        "0.00", "0.05", "1.00", "-33.76", "1234567.89"]


def test_the_csv_lists_every_line_and_totals_to_the_statement_and_the_ledger(engine,
                                                                              org_statement):
    org_id, statement_id = org_statement
    with engine.begin() as conn:
        data = statement_csv(conn, statement_id)
        lines = statement_lines(conn, statement_id)
        paid = balance(conn, chart.BANK)
        row = next(s for s in statements(conn) if s.id == statement_id)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["entry"] for r in rows] == ["payment:1", "payment:2", "refund:1", ""]
    assert [r["order"] for r in rows[:3]] == ["W00001", "W00002", "W00001"]
    assert [r["share"] for r in rows[:3]] == [money(line.share) for line in lines]
    assert rows[0]["posted_at"] == "2026-07-01 17:00"  # China time
    total = rows[-1]
    assert total["posted_at"] == "total"
    assert total["share"] == money(row.net) == money(sum(line.share for line in lines))
    assert total["gross"] == money(10000 + 3333 - 4000)
    assert total["fees"] == money(row.fees) == money(sum(line.fees for line in lines))
    assert -paid == row.net  # what the bank paid out is the statement's net


@pytest.mark.parametrize("lang, words", [
    ("en", ["Settlement statement", "Net", "paid", "Total", "refund"]),
    ("zh", ["结算单", "应付净额", "已付款", "合计", "退款"]),
])
def test_the_pdf_shows_the_figures_in_the_language_asked_for(engine, org_statement, lang,
                                                            words):
    _, statement_id = org_statement
    with engine.begin() as conn:
        data = statement_pdf(conn, statement_id, lang=lang)
        row = next(s for s in statements(conn) if s.id == statement_id)
    assert data.startswith(b"%PDF-") and b"/BaseFont /STSong-Light" in data
    shown = pdf_text(data)
    text = "\n".join(shown)
    assert f"{words[0]} #{statement_id}" in shown
    for word in words[1:]:
        assert word in shown
    assert "春季音乐会 Spring (ORG)" in shown
    assert f"{money(row.net)} CNY" in shown and "BANK-77" in text
    assert ["W00001", "W00002", "W00001"] == [s for s in shown if s.startswith("W0")]
    other = "结算单" if lang == "en" else "Settlement statement"
    assert other not in text
