"""A contract customer's holders, read from a spreadsheet, booked as one order: one ticket
per good row, each naming its holder.

- The file is CSV (UTF-8, with or without a byte-order mark, or GB18030 as a spreadsheet
  saves it in China), one holder a row: name, document type, document number; a first row
  of column names is skipped. A document type is its code (``resident_id``…) or its usual
  name (身份证, 护照, passport…).
- Every row is checked before anything is stored, and every bad row is reported with its
  number (the file's line), its field and a code (``holder_name_missing``,
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
from dataclasses import dataclass, replace
from datetime import datetime

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


def _decode(data: bytes) -> str:
    if not isinstance(data, bytes | bytearray) or not data:
        raise CustomerError("bad_holder_file", problem="empty", field="file")
    if len(data) > MAX_BYTES:
        raise CustomerError("bad_holder_file", problem="too large", field="file")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return bytes(data).decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CustomerError("bad_holder_file", problem="not text", field="file")  # pragma: no cover


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
    when it is no CSV, has no rows, or more than an order may have."""
    try:
        lines = list(csv.reader(io.StringIO(_decode(data), newline="")))
    except csv.Error:
        raise CustomerError("bad_holder_file", problem="not CSV", field="file") from None
    good, refused, seen = [], [], {}
    for n, cells in enumerate(lines, start=1):
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
