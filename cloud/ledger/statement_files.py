"""A settlement statement as the partner takes it away: CSV (one row per line, then the
total) and PDF (the statement's figures, then its lines), in English or Simplified Chinese.

Amounts are printed in the currency's main unit with two decimals (the ledger keeps minor
units); times in China time (UTC+8), where the partners are. The PDF is drawn in reportlab's
built-in CID font STSong-Light, whatever the language, so that a partner's Chinese name
prints without a font file on the machine.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

import sqlalchemy as sa
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, Table

from cloud.ledger.settlement import Line, statement, statement_lines
from sync.timeutil import CHINA

FONT = "STSong-Light"
CSV_COLUMNS = ("posted_at", "entry", "kind", "order", "reference", "currency", "gross",
               "share", "fees")

WORDS = {
    "en": {"title": "Settlement statement", "partner": "Partner", "period": "Due before",
           "run": "Run", "state": "State", "prepared": "Prepared", "paid": "Paid",
           "lines": "Lines", "gross": "Gross", "sales": "Sales", "refunds": "Refunds",
           "fees": "Fees", "net": "Net", "posted_at": "Posted", "entry": "Entry",
           "kind": "Kind", "order": "Order", "reference": "Reference", "share": "Share",
           "total": "Total", "currency": "Currency",
           "prepared_state": "prepared", "paid_state": "paid",
           "cancelled_state": "cancelled", "payment": "payment", "refund": "refund"},
    "zh": {"title": "结算单", "partner": "合作方", "period": "结算截止", "run": "结算批次",
           "state": "状态", "prepared": "制单", "paid": "付款", "lines": "笔数",
           "gross": "交易金额", "sales": "销售分账", "refunds": "退款分账", "fees": "手续费",
           "net": "应付净额", "posted_at": "入账时间", "entry": "分录", "kind": "类型",
           "order": "订单号", "reference": "支付单号", "share": "分账金额", "total": "合计",
           "currency": "币种", "prepared_state": "已制单", "paid_state": "已付款",
           "cancelled_state": "已取消", "payment": "支付", "refund": "退款"},
}


def money(amount: int) -> str:
    """Minor units as main units with two decimals: -3376 → ``-33.76``."""
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if moment else ""


def statement_csv(conn: sa.Connection, statement_id: int) -> bytes:
    """The statement's lines, one row each, then a ``total`` row: UTF-8 with a byte-order
    mark (spreadsheets then read it as UTF-8)."""
    row = statement(conn, statement_id)
    lines = statement_lines(conn, statement_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow((_when(line.posted_at), line.key, line.kind, line.order_number or "",
                         line.reference or "", row.currency, money(line.gross),
                         money(line.share), money(line.fees)))
    writer.writerow(("total", "", "", "", "", row.currency, money(row.gross), money(row.net),
                     money(row.fees)))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _summary(row, words: dict[str, str]) -> list[list[str]]:
    paid = f"{_when(row.paid_at)} {row.paid_by or ''} {row.pay_reference or ''}".strip()
    return [
        [words["partner"], f"{row.partner_name} ({row.partner_code})"],
        [words["period"], _when(row.period_until)],
        [words["run"], f"#{row.run_id} · {_when(row.as_of)}"],
        [words["state"], words.get(f"{row.state}_state", row.state)],
        [words["prepared"], f"{_when(row.prepared_at)} {row.prepared_by}"],
        [words["paid"], paid],
        [words["lines"], str(row.lines)],
        [words["gross"], f"{money(row.gross)} {row.currency}"],
        [words["sales"], f"{money(row.sales)} {row.currency}"],
        [words["refunds"], f"{money(row.refunds)} {row.currency}"],
        [words["fees"], f"{money(row.fees)} {row.currency}"],
        [words["net"], f"{money(row.net)} {row.currency}"],
    ]


def _line_rows(lines: list[Line], row, words: dict[str, str]) -> list[list[str]]:
    head = [words[k] for k in ("posted_at", "order", "kind", "reference", "gross", "share",
                               "fees")]
    body = [[_when(line.posted_at), line.order_number or line.key,
             words.get(line.kind, line.kind), line.reference or "", money(line.gross),
             money(line.share), money(line.fees)] for line in lines]
    total = [words["total"], "", "", "", money(row.gross), money(row.net), money(row.fees)]
    return [head, *body, total]


def statement_pdf(conn: sa.Connection, statement_id: int, lang: str = "en") -> bytes:
    """The statement as an A4 PDF in ``lang`` (``en`` or ``zh``): its figures, then its lines
    (the table carries on over pages, its heading repeated)."""
    words = WORDS["zh" if lang == "zh" else "en"]
    row = statement(conn, statement_id)
    lines = statement_lines(conn, statement_id)
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    grid = [("FONTNAME", (0, 0), (-1, -1), FONT), ("FONTSIZE", (0, 0), (-1, -1), 8),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey)]
    summary = Table(_summary(row, words), colWidths=(40 * mm, 120 * mm), hAlign="LEFT",
                    style=grid)
    table = LongTable(_line_rows(lines, row, words), repeatRows=1, hAlign="LEFT", style=[
        *grid, ("ALIGN", (4, 0), (-1, -1), "RIGHT"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
        ("BACKGROUND", (0, -1), (-1, -1), colors.lightgrey)])
    title = Paragraph(f"{words['title']} #{row.id}",
                      ParagraphStyle("title", fontName=FONT, fontSize=16, leading=20))
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=15 * mm,
                            title=f"{words['title']} #{row.id}", author="Wicket")
    doc.build([title, Spacer(1, 6 * mm), summary, Spacer(1, 6 * mm), table])
    return out.getvalue()
