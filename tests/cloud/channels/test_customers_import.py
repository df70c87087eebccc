"""Booking from a holders file (both databases): every bad row reported with its row number,
field and code, nothing stored for a file with bad rows unless the representative chooses to
book the good ones, holders sealed at rest, and the order path's own refusal of a holder
reported as its row. An Excel workbook (.xlsx) reads as the same rows in CSV do; an .xls, a
damaged workbook and one too large unpacked are refused with a code naming the file."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest
import sqlalchemy as sa

from cloud.catalog.tables import sessions
from cloud.channels import customer_orders as co
from cloud.channels.holder_import import MAX_UNPACKED, import_booking, read_holders
from cloud.channels.tables import holder_imports
from cloud.core.errors import HubError
from cloud.sales.tables import holders, orders
from sync.sample import resident_id
from tests.cloud.channels.customerkit import NOW, customer_hub

ID1, ID2, ID3 = (resident_id(b) for b in ("11010119900307123", "11010119851120456",
                                           "31010419700101789"))
BAD_CHECK = ID1[:17] + ("0" if ID1[17] != "0" else "1")
FILE = "\n".join([
    "name,document type,document number",  # 1: column names, skipped
    f"Zhang Wei,resident_id,{ID1}",  # 2
    f",resident_id,{ID2}",  # 3: no name
    f"Li Na,driving licence,{ID2}",  # 4: unknown type
    f"Wang Fang,身份证,{BAD_CHECK}",  # 5: mistyped
    "Zhao Lei,passport,E12345678",  # 6
    f"Zhang Wei again,resident_id,{ID1}",  # 7: the document of row 2
    f"Chen Jie,resident_id,{ID3},extra",  # 8: a fourth column
    f"Liu Yang,RESIDENT_ID,{ID2}",  # 9
]).encode()
EXPECTED = [(3, "name", "holder_name_missing"), (4, "doc_type", "document_unknown_type"),
            (5, "doc_number", "document_bad_check_digit"),
            (7, "doc_number", "holder_document_repeated"), (8, "row", "holder_row_too_long")]

ID_X = resident_id("31010419700101008")  # its check character is X
SHEET = [  # cells as a workbook keeps them, and (below) as CSV gives what the sheet shows
    ["姓名", "证件类型", "证件号码"],  # 1: column names, skipped
    ["Zhang Wei", "resident_id", ID1],  # 2
    ["Zhao Lei", "passport", "  E12345678 "],  # 3: text as typed, stripped
    [],  # 4: blank
    ["Lin Mei", "台胞证", 12345678],  # 5: a number
    ["Xu Ming", "taiwan_permit", 1234567],  # 6: a number shown as 01234567 by its format
    ["Li Na", "resident_id", 1.10101199003077e+17],  # 7: 18 digits kept by Excel as a number
    ["Sun Li", "resident_id", ID_X],  # 8: ending in X, as text
    ["", "resident_id", ID3],  # 9: no name
    ["Chen Jie", "resident_id", ID3, "extra"],  # 10: a fourth column
]
SHEET_AS_CSV = "\n".join([
    "姓名,证件类型,证件号码", f"Zhang Wei,resident_id,{ID1}", "Zhao Lei,passport,  E12345678 ",
    "", "Lin Mei,台胞证,12345678", "Xu Ming,taiwan_permit,01234567",
    "Li Na,resident_id,110101199003077000", f"Sun Li,resident_id,{ID_X}",
    f",resident_id,{ID3}", f"Chen Jie,resident_id,{ID3},extra"]).encode()


def workbook(rows: list[list], formats: dict[str, str] | None = None) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    for ref, number_format in (formats or {}).items():
        book.active[ref].number_format = number_format
    book.create_sheet("other").append(["Not Read", "passport", "E7654321"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def kit(hub_url):
    hub, made = customer_hub(hub_url, ("ACME",))
    yield hub, made["ACME"]
    hub.engine.dispose()


def booking(hub) -> co.Booking:
    return co.Booking(hub.session, "seat", zone_id=hub.zones["A"], price_tier_id=hub.std)


def counts(conn) -> tuple[int, int, int]:
    return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                 for t in (orders, holders, holder_imports))


def test_every_bad_row_is_reported_with_its_row_field_and_code():
    read = read_holders(FILE)
    assert [(r.row, r.field, r.code) for r in read.refused] == EXPECTED
    assert [(n, h[1]) for n, h in read.good] == [(2, "resident_id"), (6, "passport"),
                                                 (9, "resident_id")]
    assert read.rows == 8
    chinese = f"姓名,证件类型,证件号码\n张伟,身份证,{ID1}\n".encode("gb18030")
    assert [h for _, h in read_holders(chinese).good] == [("张伟", "resident_id", ID1)]
    for data in (b"", b"\n\n", b"x" * 1_000_001):
        with pytest.raises(HubError) as e:
            read_holders(data)
        assert e.value.code == "bad_holder_file"


def test_a_workbook_reads_as_the_same_rows_in_csv_do():
    read = read_holders(workbook(SHEET, {"C6": "00000000"}))
    assert read == read_holders(SHEET_AS_CSV)
    assert [(n, h[1:]) for n, h in read.good] == [
        (2, ("resident_id", ID1)), (3, ("passport", "E12345678")),
        (5, ("taiwan_permit", "12345678")), (6, ("taiwan_permit", "01234567")),
        (8, ("resident_id", ID_X))]
    assert [(r.row, r.field, r.code) for r in read.refused] == [
        (7, "doc_number", "document_bad_check_digit"), (9, "name", "holder_name_missing"),
        (10, "row", "holder_row_too_long")]


def test_an_xls_a_damaged_or_too_large_workbook_and_too_many_rows_are_refused():
    good = workbook(SHEET)
    bomb, not_a_book = io.BytesIO(), io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b" " * (MAX_UNPACKED + 1))
    with zipfile.ZipFile(not_a_book, "w") as z:
        z.writestr("holders.csv", SHEET_AS_CSV)
    long = workbook([["Name", "Type", "Number"]] + [[f"N{i}", "passport", f"E{10**7 + i}"]
                                                    for i in range(co.MAX_SEATS + 1)])
    for data, code, problem in (
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "holder_file_old_excel", None),
            (good[:len(good) // 2], "holder_workbook_unreadable", None),
            (good[:200] + bytes(200) + good[400:], "holder_workbook_unreadable", None),
            (not_a_book.getvalue(), "holder_workbook_unreadable", None),
            (bomb.getvalue(), "bad_holder_file", "too large"),
            (long, "bad_holder_file", f"more than {co.MAX_SEATS} rows")):
        with pytest.raises(HubError) as e:
            read_holders(data)
        assert (e.value.code, e.value.params.get("problem"), e.value.params["field"]) == \
            (code, problem, "file")
    full = workbook([[f"N{i}", "passport", f"E{10**7 + i}"] for i in range(co.MAX_SEATS)])
    assert len(read_holders(full).good) == co.MAX_SEATS


def test_a_file_with_bad_rows_books_and_stores_nothing_unless_the_good_rows_are_chosen(kit):
    hub, (cid, rep) = kit
    with hub.engine.begin() as conn:
        done = import_booking(conn, rep, booking(hub), FILE, "staff.csv", False, NOW)
    assert done.order is None and [(r.row, r.field, r.code) for r in done.refused] == EXPECTED
    with hub.engine.connect() as conn:
        assert counts(conn) == (0, 0, 0)
    with hub.engine.begin() as conn:
        done = import_booking(conn, rep, booking(hub), FILE, "staff.csv", True, NOW)
    assert done.order is not None and len(done.order.seat_ids) == 3
    with hub.engine.connect() as conn:
        assert counts(conn) == (1, 3, 1)
        sealed = " ".join(str(v) for r in conn.execute(sa.select(holders)) for v in r)
        assert "Zhang" not in sealed and ID1 not in sealed and "E12345678" not in sealed
        kept = conn.execute(sa.select(holder_imports)).one()
        lines = co.order_lines_of(conn, done.order.order_id)
    assert (kept.customer_id, kept.order_id, kept.rows, kept.accepted) == \
        (cid, done.order.order_id, 8, 3)
    assert [(r["row"], r["field"], r["code"]) for r in kept.refused] == EXPECTED
    assert "Zhang" not in str(kept.refused) and ID1 not in str(kept.refused)
    assert len(lines) == 3 and all(line["holder"] and "Zhang Wei" not in line["holder"]
                                   and ID1 not in line["holder"] for line in lines)


def test_a_holder_the_order_path_refuses_is_reported_as_its_row(kit):
    hub, (_cid, rep) = kit
    with hub.engine.begin() as conn:  # a real-name session: one ticket per document
        conn.execute(sa.update(sessions).where(sessions.c.id == hub.session)
                     .values(real_name=True))
        import_booking(conn, rep, booking(hub), f"Zhang Wei,resident_id,{ID1}\n".encode(),
                       "first.csv", False, NOW)
    again = f"Li Na,resident_id,{ID2}\nZhang Wei,resident_id,{ID1}\n".encode()
    with hub.engine.begin() as conn:
        done = import_booking(conn, rep, booking(hub), again, "second.csv", False, NOW)
    assert done.order is None
    assert [(r.row, r.field, r.code) for r in done.refused] == \
        [(2, "doc_number", "document_already_used")]
    with hub.engine.connect() as conn:
        assert counts(conn) == (1, 1, 1)
