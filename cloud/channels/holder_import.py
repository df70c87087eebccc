"""A contract customer's holders, read from a spreadsheet, booked as one order: one ticket
per good row, each naming its holder.

- The file is CSV (UTF-8, with or without a byte-order mark, or GB18030 as a spreadsheet
  saves it in China) or an Excel workbook (.xlsx, known by its content, not its name: a ZIP
  archive), one holder a row: name, document type, document number; a first row of column
  names is skipped. A document type is its code (``resident_id``…) or its usual name
  (身份证, 护照, passport…).
- Of a workbook only the first worksheet is read, its cells as the sheet shows them (a whole
  number as its digits, never ``1.1E+17``; text as typed). An old binary workbook (.xls, or
  any Office file locked with a password) is refused (``holder_file_old_excel``), and so is
  a workbook that cannot be read (``holder_workbook_unreadable``): whatever a file holds, it
  is refused with a code naming ``file``, never raised as something else. Before the
  workbook is opened its archive's unpacked size is checked against ``MAX_UNPACKED`` (a ZIP
  bomb is refused unopened), and no more rows are read than an order may have holders.
- Every row is checked before anything is stored, and every bad row is reported with its
  number (the file's line, or the sheet's row), its field and a code (``holder_name_missing``,
  ``document_bad_check_digit``, ``holder_document_repeated``…) — never with the personal
  data itself. A file with bad rows books nothing unless the representative chooses to book
  the good rows only.
- The booking goes through :func:`cloud.channels.customer_orders.book`, so the holders are
  sealed at rest by the order path (cloud/sales/holders.py) and checked there too (a
  document with a ticket for the session already is reported as its row). The import is
  kept (``holder_imports``) with its counts and refused rows, beside the order.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

import openpyxl
import sqlalchemy as sa

from cloud.channels.customer_orders import MAX_SEATS, Booking, book
from cloud.channels.customers import CustomerError, Rep
from cloud.channels.tables import holder_imports
from cloud.core.audit import record
from cloud.core.errors import HubError
from cloud.core.seal import keyring_for
from cloud.sales.order_plan import check_holder
from cloud.sales.orders import OrderCreated
from cloud.sales.tables import order_lines
from sync.identity import DOC_TYPES, DocumentError

MAX_BYTES = 1_000_000
# a workbook's parts together, unpacked: a holders list as Excel saves it is some 100 kB, but
# the library's objects for its XML take up to ~120 times the XML's size
MAX_UNPACKED = 2 * MAX_BYTES
_ZIP = b"PK\x03\x04"  # an .xlsx is a ZIP archive
_OLE = b"\xd0\xcf\x11\xe0"  # an .xls, or an Office file locked with a password
# rows with content read from a sheet: column names and one row more than an order may have,
# enough for the count below to refuse a longer sheet as it refuses a longer CSV file
_SHEET_ROWS = MAX_SEATS + 2
_FIELDS = ("name", "doc_type", "doc_number")
_HEADER = {"name", "姓名", "holder", "持票人"}
DOC_NAMES = {
    "身份证": "resident_id", "居民身份证": "resident_id", "resident id": "resident_id",
    "resident identity card": "resident_id", "id card": "resident_id",
    "居住证": "residence_permit", "港澳台居民居住证": "residence_permit",
    "永久居留身份证": "foreign_permanent", "外国人永久居留身份证": "foreign_permanent",
    "港澳通行证": "hk_macau_permit", "回乡证": "hk_macau_permit",
    "港澳居民来往内地通行证": "hk_macau_permit",
    "台胞证": "taiwan_permit", "台湾居民来往大陆通行证": "taiwan_permit",
    "护照": "passport", "passport": "passport",
}
_LINE_FIELD = re.compile(r"lines\.(\d+)\.(.+)")


@dataclass(frozen=True)
class Refused:
    row: int
    field: str
    code: str

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "code": self.code}


@dataclass(frozen=True)
class ReadFile:
    """The holders of the good rows (name, document type, normalised number) with their row
    numbers, and every refused row."""

    good: tuple[tuple[int, tuple[str, str, str]], ...]
    refused: tuple[Refused, ...]

    @property
    def rows(self) -> int:
        return len(self.good) + len({r.row for r in self.refused})


@dataclass(frozen=True)
class Imported:
    """What an import did: the order (None when nothing was booked) and every refused row."""

    rows: int
    refused: tuple[Refused, ...]
    order: OrderCreated | None = None
    import_id: int | None = None


def _sized(data: bytes) -> bytes:
    if not isinstance(data, bytes | bytearray) or not data:
        raise CustomerError("bad_holder_file", problem="empty", field="file")
    if len(data) > MAX_BYTES:
        raise CustomerError("bad_holder_file", problem="too large", field="file")
    return bytes(data)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CustomerError("bad_holder_file", problem="not text", field="file")  # pragma: no cover


def _csv_rows(data: bytes) -> list[tuple[int, list[str]]]:
    try:
        return list(enumerate(csv.reader(io.StringIO(_decode(data), newline="")), start=1))
    except csv.Error:
        raise CustomerError("bad_holder_file", problem="not CSV", field="file") from None


def cell_text(value: object, number_format: str | None = None) -> str:
    """A cell as the sheet shows it: text as typed (stripped); a whole number as its digits
    (a float as Excel keeps it, ``1.10101199003077E+17``, as ``110101199003077000``), padded
    with zeros when its format is only zeros (``00000000``); other values as Python writes
    them."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and value.is_integer():
        value = int(Decimal(repr(value)))
    if isinstance(value, int):
        digits = str(value)
        if number_format and set(number_format) == {"0"} and value >= 0:
            digits = digits.zfill(len(number_format))
        return digits
    return str(value)


def _unreadable() -> CustomerError:
    return CustomerError("holder_workbook_unreadable", field="file")


def _sheet_rows(data: bytes) -> list[tuple[int, list[str]]]:
    """The rows with content of a workbook's first worksheet, with the sheet's row numbers.
    The archive's declared sizes are summed before the workbook is opened; zipfile never
    unpacks a part beyond its declared size (it fails the part instead)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:  # not a ZIP archive
        raise _unreadable() from e
    if sum(p.file_size for p in parts) > MAX_UNPACKED:
        raise CustomerError("bad_holder_file", problem="too large", field="file")
    if any(p.flag_bits & 0x1 for p in parts):  # a part encrypted with a password
        raise _unreadable()
    rows: list[tuple[int, list[str]]] = []
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            sheet.reset_dimensions()  # the rows as they are, not as far as the file says
            for n, cells in enumerate(sheet.iter_rows(), start=1):
                texts = [cell_text(c.value, getattr(c, "number_format", None)) for c in cells]
                if any(texts):
                    rows.append((n, texts))
                    if len(rows) >= _SHEET_ROWS:
                        break
        finally:
            book.close()
    except Exception as e:  # whatever a damaged workbook makes its reader raise (the
        # archive, the XML of a part, the library's own checks) is the file's fault
        raise _unreadable() from e
    return rows


def doc_type_of(text: str) -> str | None:
    t = " ".join(text.strip().split()).lower()
    if t in DOC_TYPES:
        return t
    return DOC_NAMES.get(t)


def _row(n: int, cells: list[str]) -> tuple[str, str, str] | Refused:
    cells = [c.strip() for c in cells] + [""] * (3 - len(cells))
    name, doc_text, number = cells[:3]
    if len(cells) > 3 and any(cells[3:]):
        return Refused(n, "row", CustomerError("holder_row_too_long", field="row").code)
    try:
        check_holder(name, "passport", "P0000000")  # the name on its own
    except HubError as e:
        return Refused(n, "name", e.code)
    doc_type = doc_type_of(doc_text)
    if doc_type is None:
        return Refused(n, "doc_type", "document_unknown_type")
    try:
        return name, doc_type, check_holder(name, doc_type, number)
    except DocumentError as e:
        return Refused(n, "doc_number", f"document_{e.code}")
    except HubError as e:
        return Refused(n, "doc_number", e.code)


def read_holders(data: bytes) -> ReadFile:
    """Every row of the file checked: the good ones and the refused ones (a document given
    on two rows refuses the later one, ``holder_document_repeated``). ``bad_holder_file``
    when it is no CSV, has no rows, or more than an order may have; a workbook's own
    refusals are ``holder_file_old_excel`` and ``holder_workbook_unreadable``."""
    data = _sized(data)
    if data.startswith(_OLE):
        raise CustomerError("holder_file_old_excel", field="file")
    lines = _sheet_rows(data) if data.startswith(_ZIP) else _csv_rows(data)
    good, refused, seen = [], [], {}
    for n, cells in lines:
        if not any(c.strip() for c in cells):
            continue
        if n == 1 and cells[0].strip().lower().lstrip("\ufeff") in _HEADER:
            continue
        got = _row(n, cells)
        if isinstance(got, Refused):
            refused.append(got)
        elif (got[1], got[2]) in seen:
            e = CustomerError("holder_document_repeated", field="doc_number")
            refused.append(Refused(n, "doc_number", e.code))
        else:
            seen[(got[1], got[2])] = n
            good.append((n, got))
    if not good and not refused:
        raise CustomerError("bad_holder_file", problem="no rows", field="file")
    if len(good) + len(refused) > MAX_SEATS:
        raise CustomerError("bad_holder_file", problem=f"more than {MAX_SEATS} rows",
                            field="file")
    return ReadFile(tuple(good), tuple(refused))


def _refused_rows(conn: sa.Connection, e: HubError, session_id: int,
                  good) -> list[Refused]:
    """An order path's refusal of holders, as the rows they came from: one naming a line's
    holder, or a document with a live ticket (or hold) for the session already, found by
    its keyed hash (the unique index that refused it names no line)."""
    field = str(e.params.get("field") or "")
    m = _LINE_FIELD.fullmatch(field)
    if m is not None and m.group(2).startswith("holder") and int(m.group(1)) < len(good):
        what = m.group(2)
        named = "name" if what in ("holder", "holder.name") else (
            "doc_type" if what.startswith("holder.doc_type") else "doc_number")
        return [Refused(good[int(m.group(1))][0], named, e.code)]
    if e.code != "document_already_used":
        return []
    ring = keyring_for(conn)
    row_of = {h: n for n, holder in good for h in ring.doc_hashes(holder[2])}
    live = conn.execute(sa.select(order_lines.c.doc_hash).where(
        order_lines.c.session_id == session_id, order_lines.c.doc_hash.in_(list(row_of)),
        order_lines.c.state.in_(("held", "issued")))).scalars()
    return [Refused(n, "doc_number", e.code) for n in sorted({row_of[h] for h in live})]


def import_booking(conn: sa.Connection, rep: Rep, booking: Booking, data: bytes,
                   filename: str, good_only: bool, now: datetime) -> Imported:
    """Book one ticket per good row of the file, for the session and the seats' kind, zone
    and tier of ``booking``. Nothing is booked or stored while a row is refused, unless
    ``good_only``; a refusal of the order path naming one holder is reported as that row,
    and the order's other refusals (``sold_out``…) are raised as they are."""
    read = read_holders(data)
    filename = (filename or "holders.csv").strip()[:200] or "holders.csv"
    if read.refused and (not good_only or not read.good):
        return Imported(read.rows, read.refused)
    try:
        with conn.begin_nested():
            created = book(conn, rep, replace(booking, seat_ids=(), count=len(read.good),
                                              holders=tuple(h for _, h in read.good)), now)
    except HubError as e:
        rows = _refused_rows(conn, e, booking.session_id, read.good)
        if not rows:
            raise
        return Imported(read.rows, (*read.refused, *rows))
    import_id = conn.execute(sa.insert(holder_imports).values(
        customer_id=rep.customer_id, order_id=created.order_id, filename=filename,
        rows=read.rows, accepted=len(read.good),
        refused=[r.as_dict() for r in read.refused], actor=f"customer_rep:{rep.id}",
        created_at=now)).inserted_primary_key[0]
    record(conn, f"customer_rep:{rep.id}", "customer.holder_import",
           f"holder_import:{import_id}", None,
           {"order": created.number, "rows": read.rows, "accepted": len(read.good),
            "refused": len(read.refused)})
    return Imported(read.rows, read.refused, created, import_id)


def imports_of(conn: sa.Connection, customer_id: int, limit: int = 50) -> list[sa.Row]:
    t = holder_imports
    return list(conn.execute(sa.select(t).where(t.c.customer_id == customer_id)
                             .order_by(t.c.id.desc()).limit(limit)))
