"""The partner portal's account page (``/partner/account``, with the portal's own sign-in,
session and CSRF token: cloud/ledger/portal_pages.py ``share_session``): the signed-in
partner's prepaid balance (备用金), credit limit (授信) and the credit it can still use, its
latest account entries and the credit statement of a month (``?month=YYYY-MM``, China time;
this month when absent), and that statement as CSV. Every read names the signed-in user's
partner: no address shows another partner's account.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from cloud.channels import accounts
from cloud.channels.account_pages import (
    ACCOUNT_WORDS,
    CURRENCY,
    ENTRY_WORDS,
    LINE_WORDS,
    ZONE,
    month_arg,
    statement_csv,
    words_of,
)
from cloud.ledger.portal_pages import share_session, signed_in_partner
from cloud.web.web import engine

bp = share_session(Blueprint("partner_account", __name__, url_prefix="/partner"))


@bp.context_processor
def _helpers() -> dict:
    return {"CURRENCY": CURRENCY, "ZONE": ZONE, "entry_words": lambda k: words_of(ENTRY_WORDS, k),
            "account_words": lambda k: words_of(ACCOUNT_WORDS, k),
            "line_words": lambda k: words_of(LINE_WORDS, k)}


@bp.get("/account")
def account():
    me = signed_in_partner()
    month = month_arg()
    with engine().connect() as conn:
        b = accounts.balances(conn, me.partner_id)
        entries = accounts.recent_entries(conn, me.partner_id)
        s = accounts.credit_statement(conn, me.partner_id, month)
    return render_template("portal/account.html", b=b, entries=entries, s=s)


@bp.get("/account/statement.csv")
def statement_download():
    me = signed_in_partner()
    month = month_arg()
    with engine().connect() as conn:
        s = accounts.credit_statement(conn, me.partner_id, month)
    return statement_csv(s, me.partner_code)
