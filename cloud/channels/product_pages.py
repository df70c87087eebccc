"""The distribution products' pages (``/channels/products``): day products and bundles, made
here, and a day product's daily stock — set for a run of days, never below what a day has
sold. Everything here needs ``channels.manage``; the rules are
cloud/channels/products_admin.py's (over the catalog's products and the inventory's quotas).
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import abort, render_template, request
from flask_babel import gettext as _

from cloud.catalog.tables import venues
from cloud.channels import products_admin as admin
from cloud.channels.partner_pages import (
    MANAGE,
    MAX_ID,
    BadForm,
    bad,
    bp,
    day_field,
    number_field,
    refusal,
    text_field,
    yuan_field,
)
from cloud.core.errors import HubError
from cloud.web.query import query_int, query_time
from cloud.web.web import actor, back, ok, permission
from cloud.web.web import engine as db
from sync.timeutil import CHINA, utcnow

SHOWN_DAYS = 14
MAX_PARTS = 10


def _index_page(form: dict, error: str = "", status: int = 200):
    with db().connect() as conn:
        rows = admin.list_products(conn)
        parts = admin.list_products(conn, ("pass", "day"))
        places = conn.execute(sa.select(venues.c.id, venues.c.code, venues.c.name)
                              .order_by(venues.c.code)).all()
    return render_template("channels/partners/products.html", rows=rows, parts=parts,
                           venues=places, form=form, error=error,
                           part_slots=range(1, 4)), status


@bp.get("/products")
@permission(MANAGE)
def products():
    return _index_page({})


@bp.post("/products")
@permission(MANAGE)
def add_product():
    form = request.form.to_dict()
    try:
        kind = request.form.get("kind", "")
        values = {"code": text_field("code", 40), "name": text_field("name", 200),
                  "amount": yuan_field("amount"), "actor": actor()}
        with db().begin() as conn:
            if kind == "day":
                product_id = admin.add_day_product(
                    conn, venue_id=number_field("venue_id", 1, MAX_ID), **values)
            elif kind == "bundle":
                product_id = admin.add_bundle(conn, parts=_parts(), **values)
            else:
                raise bad("kind", _("choose from the list."))
    except (HubError, BadForm) as e:
        return _index_page(form, refusal(e), 422)
    ok(_("Product %(code)s is made.", code=values["code"]))
    return back("channel_terms.product", product_id=product_id)


def _parts() -> dict[int, int]:
    """A bundle's parts from the form's rows (``part_N``, ``qty_N``); empty rows left out."""
    parts: dict[int, int] = {}
    for n in range(1, MAX_PARTS + 1):
        if not request.form.get(f"part_{n}", "").strip():
            continue
        part = number_field(f"part_{n}", 1, MAX_ID)
        qty = number_field(f"qty_{n}", 1, 20)
        if part in parts:
            raise bad("parts", _("each product once."))
        parts[part] = qty
    if not parts:
        raise bad("parts", _("give a value."))
    return parts


def _product_page(product_id: int, error: str = "", form: dict | None = None,
                  status: int = 200):
    start = query_time("from")
    today = utcnow().astimezone(CHINA).date()
    first = start.astimezone(CHINA).date() if start else today
    with db().connect() as conn:
        row = admin.product(conn, product_id)
        if row is None or row["kind"] not in ("day", "bundle"):
            abort(404)
        days = query_int("days", SHOWN_DAYS, 1, admin.MAX_DAYS)
        stock = admin.stock_for(conn, product_id, first, days) if row["kind"] == "day" else []
        parts = {r.id: r for r in admin.list_products(conn, ("pass", "day"))}
    return render_template("channels/partners/product.html", p=row, stock=stock, parts=parts,
                           first=first, today=today,
                           later=(first + timedelta(days=days)).isoformat(),
                           error=error, form=form or {}), status


@bp.get("/products/<int:product_id>")
@permission(MANAGE)
def product(product_id: int):
    return _product_page(product_id)


@bp.post("/products/<int:product_id>/stock")
@permission(MANAGE)
def set_stock(product_id: int):
    form = request.form.to_dict()
    try:
        first, last = day_field("first_day"), day_field("last_day")
        capacity = number_field("capacity", 0, admin.MAX_STOCK)
        with db().begin() as conn:
            if admin.product(conn, product_id) is None:
                abort(404)
            n = admin.set_daily_stock(conn, product_id, first, last, capacity, actor(),
                                      utcnow())
    except (HubError, BadForm) as e:
        return _product_page(product_id, refusal(e), form, 422)
    ok(_("The stock of %(n)s days is set.", n=n))
    return back("channel_terms.product", product_id=product_id)
