"""The partner portal (``/partner/``): a partner's own users sign in and see their own money —
the balance the hub owes them, their transactions with each one's split, their settlement
statements and their state, and the exports (CSV, PDF).

It is not the staff pages' shell: it is an outside site (cloud/web/outside.py) with its own
sign-in (cloud/ledger/partners.py ``check_portal_sign_in``, limited per client address as the
staff's is), its own session cookie, ``wicket_partner``, and its own CSRF token in the
``wicket_partner_csrf`` cookie, both with path /partner. Every request reads the user again:
a disabled user or a suspended partner is out at once, and signing out ends every session the
user began before it (``partner_users.signed_out_at``), copies included. :func:`share_session`
lends all this to other areas' pages under /partner/.

Every read names the signed-in user's partner (cloud/ledger/reads.py for the journal,
cloud/ledger/settlement.py filtered by partner): a statement of another partner is "not
found", exactly as one that does not exist.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

import sqlalchemy as sa
from flask import Blueprint, Response, abort, g, render_template

from cloud.ledger import reads, settlement
from cloud.ledger.errors import LedgerError
from cloud.ledger.pages import (
    ZONE,
    channel_words,
    entry_kind_words,
    part_words,
    statement_state_words,
)
from cloud.ledger.partners import check_portal_sign_in, sign_out_everywhere
from cloud.ledger.tables import partner_users, partners
from cloud.web.outside import OutsideSite
from cloud.web.query import query_int
from cloud.web.web import engine

bp = Blueprint("portal", __name__, url_prefix="/partner")
SESSION_COOKIE = "wicket_partner"
CSRF_COOKIE = "wicket_partner_csrf"
LIFETIME = 8 * 3600  # seconds a sign-in lasts
EXPORT_ROWS = 10_000


def _portal_user(conn: sa.Connection, user_id: int, partner_id: int, began: datetime):
    """The portal user of a session begun at ``began``, read again (``id``, ``partner_id``,
    ``username``, ``display_name``, ``partner_name``, ``partner_code``): None when the user is
    disabled, the partner suspended, or the user signed out everywhere since."""
    row = conn.execute(
        sa.select(partner_users.c.id, partner_users.c.partner_id,
                  partner_users.c.username, partner_users.c.display_name,
                  partner_users.c.signed_out_at,
                  partners.c.name.label("partner_name"), partners.c.code.label("partner_code"))
        .join(partners, partners.c.id == partner_users.c.partner_id)
        .where(partner_users.c.id == user_id, partner_users.c.partner_id == partner_id,
               partner_users.c.state == "active", partners.c.state == "active")).first()
    if row is not None and row.signed_out_at is not None and began <= row.signed_out_at:
        return None
    return row


SITE = OutsideSite(
    name="portal", prefix="/partner", session_cookie=SESSION_COOKIE, csrf_cookie=CSRF_COOKIE,
    salt="wicket-partner-portal", keys=("u", "p"), owner="partner_id", lookup=_portal_user,
    user_attr="portal_user", g_prefix="portal", templates="portal", home="portal.balance",
    lifetime=LIFETIME)
WORDS = {"zone": ZONE, "part_words": part_words, "entry_kind_words": entry_kind_words,
         "channel_words": channel_words, "statement_state_words": statement_state_words}
SITE.serve(bp, check_portal_sign_in, sign_out_everywhere, WORDS)
csrf_field = SITE.csrf_field


def _me():
    return g.portal_user


def signed_in_partner():
    """The portal user signed in for this request (``id``, ``partner_id``, ``username``,
    ``display_name``, ``partner_name``, ``partner_code``), or None: for pages of other areas
    under /partner/ that :func:`share_session` guards."""
    return g.get("portal_user")


def share_session(other: Blueprint, public: frozenset[str] = frozenset()) -> Blueprint:
    """Give another area's blueprint under ``/partner/`` the portal's session, CSRF check,
    security headers, page globals and error pages: its pages need a signed-in portal user,
    but those whose endpoints ``public`` names. Its templates extend ``portal/base.html``."""
    return SITE.guard(other, WORDS, public)


# -- the partner's own ----------------------------------------------------------------------------


@bp.get("/balance")
def balance():
    me = _me()
    with engine().connect() as conn:
        accounts = reads.partner_accounts(conn, me.partner_id)
        recent = settlement.statements(conn, partner_id=me.partner_id)[:5]
    return render_template("portal/balance.html", accounts=accounts, recent=recent)


@bp.get("/transactions")
def transactions():
    me = _me()
    before = query_int("before")
    with engine().connect() as conn:
        rows = reads.partner_transactions(conn, me.partner_id, before=before)
    return render_template("portal/transactions.html", rows=rows, before=before,
                           more=len(rows) == reads.PAGE)


@bp.get("/transactions.csv")
def transactions_csv():
    """The partner's transactions (the newest :data:`EXPORT_ROWS`), one row per entry: its
    share, and the split among the parts."""
    me = _me()
    with engine().connect() as conn:
        rows = reads.partner_transactions(conn, me.partner_id, limit=EXPORT_ROWS)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["entry", "posted_at", "kind", "state", "order", "reference", "currency",
                     "amount", "share", "split"])
    for r in rows:
        writer.writerow([r["id"], (r["posted_at"] or r["created_at"]).isoformat(), r["kind"],
                         r["state"], r["order_number"] or "", r["reference"] or "",
                         r["currency"], r["amount"], sum(m["amount"] for m in r["mine"]),
                         " ".join(f"{k}={v}" for k, v in sorted(r["split"].items()))])
    return _download(out.getvalue().encode("utf-8"), "text/csv; charset=utf-8",
                     f"transactions-{me.partner_code}.csv")


@bp.get("/statements")
def statements():
    me = _me()
    with engine().connect() as conn:
        rows = settlement.statements(conn, partner_id=me.partner_id)
    return render_template("portal/statements.html", rows=rows)


def _own_statement(conn, statement_id: int):
    """The statement, if it is the signed-in partner's; 404 otherwise (another partner's
    looks exactly like one that does not exist)."""
    try:
        row = settlement.statement(conn, statement_id)
    except LedgerError:
        abort(404)
    if row.partner_id != _me().partner_id:
        abort(404)
    return row


@bp.get("/statements/<int:statement_id>")
def statement(statement_id: int):
    with engine().connect() as conn:
        row = _own_statement(conn, statement_id)
        lines = settlement.statement_lines(conn, statement_id)
    return render_template("portal/statement.html", s=row, lines=lines)


@bp.get("/statements/<int:statement_id>.<any(csv, pdf):fmt>")
def statement_file(statement_id: int, fmt: str):
    from cloud.ledger import statement_files
    from cloud.web.pages import chosen_language

    with engine().connect() as conn:
        row = _own_statement(conn, statement_id)
        data = (statement_files.statement_csv(conn, statement_id) if fmt == "csv"
                else statement_files.statement_pdf(conn, statement_id, chosen_language()))
    mimetype = "text/csv; charset=utf-8" if fmt == "csv" else "application/pdf"
    return _download(data, mimetype, f"statement-{row.partner_code}-{statement_id}.{fmt}")


def _download(data: bytes, mimetype: str, name: str) -> Response:
    return Response(data, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
