"""The buyers page for customer service: accounts newest first, masked, a page at a time; one
account found by its mobile number, which arrives only in a POST body (never in a URL) and is
shown masked."""

from __future__ import annotations

from flask import render_template, request, url_for
from flask_babel import gettext as _

from cloud.buyers.accounts import list_buyers
from cloud.buyers.errors import BuyerError
from cloud.web.query import query_int
from cloud.web.web import engine, page_blueprint, permission
from cloud.web.words import rule_error

bp = page_blueprint("buyers", "/buyers")
PAGE = 50


@bp.get("")
@permission("buyers.view")
def index():
    page = query_int("page", 1, hi=100_000)
    with engine().connect() as conn:
        rows = list_buyers(conn, limit=PAGE + 1, offset=(page - 1) * PAGE)
    return render_template(
        "buyers/index.html", rows=rows[:PAGE], page=page, error=None, searched=False,
        newer=url_for("buyers.index", page=page - 1) if page > 1 else None,
        older=url_for("buyers.index", page=page + 1) if len(rows) > PAGE else None)


@bp.post("")
@permission("buyers.view")
def search():
    mobile = request.form.get("mobile", "")
    error, rows = None, []
    if not mobile.strip():
        error = _("Type the mobile number.")
    else:
        try:
            with engine().connect() as conn:
                rows = list_buyers(conn, mobile=mobile)
        except BuyerError as e:
            error = rule_error(e)
    return render_template("buyers/index.html", rows=rows, page=1, error=error, searched=True,
                           newer=None, older=None), 422 if error else 200
