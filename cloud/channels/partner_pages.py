"""The distribution partners' pages (``/channels/partners``): the suppliers, distributors and
agents with their profile (contact masked), the prices agreed with them (added, or ended
after a confirmation — never edited) and the sales codes, with the partners each is bound to.
Everything here needs ``channels.manage``. The rules and their audit are
cloud/channels/partner_terms.py's; these views read forms and show refusals in the page's
language. The day products' pages are cloud/channels/product_pages.py, on this blueprint.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import abort, render_template, request
from flask_babel import gettext as _

from cloud.catalog.tables import price_tiers, products, sessions
from cloud.channels import partner_terms as terms
from cloud.core.errors import HubError
from cloud.ledger.errors import LedgerError
from cloud.ledger.partners import PARTNER_STATES
from cloud.web.web import actor, back, ok, page_blueprint, parse_local, permission, refused
from cloud.web.web import engine as db
from cloud.web.words import rule_error
from sync.timeutil import utcnow
from sync.websafe import whole_number

bp = page_blueprint("channel_terms", url_prefix="/channels")
MANAGE = "channels.manage"
ZONE = "Asia/Shanghai"
MAX_ID = 2**31 - 1
_YUAN = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")


def partner_kind_words(kind: str) -> str:
    return {"distributor": _("distributor"), "agent": _("agent"),
            "supplier": _("supplier")}.get(kind, kind)


def product_kind_words(kind: str) -> str:
    return {"pass": _("pass"), "day": _("day product"), "bundle": _("bundle")}.get(kind, kind)


def code_state_words(state: str) -> str:
    return {"active": _("active"), "withdrawn": _("withdrawn")}.get(state, state)


@bp.context_processor
def _helpers() -> dict:
    return {"zone": ZONE, "partner_kind_words": partner_kind_words,
            "product_kind_words": product_kind_words, "code_state_words": code_state_words,
            "PARTNER_STATES": PARTNER_STATES, "MANAGE": MANAGE}


# -- the forms' fields ---------------------------------------------------------------------------


class BadForm(ValueError):
    """A form field the page cannot read; its words name the field."""


def field_words(field: str) -> str:
    """A form field's label, for a refusal that names it."""
    return {"name": _("Name"), "code": _("Code"), "state": _("State"),
            "contact_name": _("Contact"), "contact_phone": _("Contact's phone"),
            "contact_email": _("Contact's e-mail"), "address": _("Address"),
            "may_bind_codes": _("May bind its sales codes"), "partner_id": _("Partner"),
            "supplier_id": _("Supplier"), "product_id": _("Product"),
            "price_tier_id": _("Price tier"), "amount": _("Price (yuan)"),
            "currency": _("Currency"), "effective_from": _("In force from"),
            "effective_until": _("In force until"), "price_id": _("Agreed price"),
            "code_id": _("Sales code"), "venue_id": _("Venue"), "parts": _("Parts"),
            "first_day": _("First day"), "last_day": _("Last day"),
            "capacity": _("Stock per day"), "days": _("Days"),
            "sale_opens_at": _("Sale opens"), "sale_closes_at": _("Sale closes")
            }.get(field, field)


def bad(field: str, words: str) -> BadForm:
    return BadForm(_("%(field)s: %(problem)s", field=field_words(field), problem=words))


def refusal(e: Exception) -> str:
    """A refusal in the page's words, the field it names by its label."""
    if isinstance(e, HubError) and "field" in e.params:
        return rule_error(e, field=field_words(str(e.params["field"])))
    return rule_error(e)


def text_field(name: str, limit: int, *, optional: bool = False) -> str:
    value = request.form.get(name, "").strip()
    if not value and not optional:
        raise bad(name, _("give a value."))
    if len(value) > limit or not value.isprintable():
        raise bad(name, _("at most %(n)s characters, printable ones.", n=limit))
    return value


def number_field(name: str, lo: int, hi: int, *, optional: bool = False) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw and optional:
        return None
    value = whole_number(raw, lo, hi)
    if value is None:
        raise bad(name, _("give a whole number from %(lo)s to %(hi)s.", lo=lo, hi=hi))
    return value


def choice_field(name: str, choices: tuple[str, ...]) -> str:
    value = request.form.get(name, "").strip()
    if value not in choices:
        raise bad(name, _("choose from the list."))
    return value


def yuan_field(name: str) -> int:
    """An amount typed in yuan (``12.50``), as fen."""
    raw = request.form.get(name, "").strip()
    if not _YUAN.fullmatch(raw):
        raise bad(name, _("give an amount in yuan, such as 12.50."))
    whole, _sep, cents = raw.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def time_field(name: str, now: datetime) -> datetime:
    """A China-time moment from a ``datetime-local`` field; empty is ``now`` (as is a moment
    typed to now's minute, so that "from now" is never in the past)."""
    raw = request.form.get(name, "").strip()
    if not raw:
        return now
    try:
        if len(raw) > 32:
            raise ValueError(raw)
        moment = parse_local(raw, ZONE)
    except (ValueError, OverflowError):
        raise bad(name, _("give a date and time.")) from None
    return now if now - timedelta(minutes=1) <= moment < now else moment


def day_field(name: str) -> date:
    raw = request.form.get(name, "").strip()
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise bad(name, _("give a date such as 2027-08-01.")) from None


# -- partners --------------------------------------------------------------------------------------


@bp.get("/partners")
@permission(MANAGE)
def partners():
    with db().connect() as conn:
        rows = terms.list_partners(conn)
    return render_template("channels/partners/index.html", rows=rows)


def _partner_or_404(conn, partner_id: int) -> dict:
    try:
        p = terms.profile(conn, partner_id)
    except LedgerError:
        abort(404)
    if p["kind"] not in (*terms.SELLERS, "supplier"):
        abort(404)
    return p


def _priceables(conn) -> dict:
    """What a price may be agreed for: products, and sessions' price tiers."""
    return {"products": conn.execute(sa.select(products.c.id, products.c.code, products.c.name,
                                               products.c.kind)
                                     .order_by(products.c.code)).all(),
            "tiers": conn.execute(sa.select(price_tiers.c.id, price_tiers.c.code,
                                            sessions.c.name.label("session_name"))
                                  .join(sessions, sessions.c.id == price_tiers.c.session_id)
                                  .order_by(sessions.c.starts_at, price_tiers.c.code)).all()}


def _partner_page(partner_id: int, *, error: str = "", form: dict | None = None,
                  status: int = 200):
    now = utcnow()
    with db().connect() as conn:
        p = _partner_or_404(conn, partner_id)
        prices = terms.list_prices(conn, partner_id) if p["kind"] in terms.SELLERS else []
        codes = (terms.list_codes(conn, supplier_id=partner_id) if p["kind"] == "supplier"
                 else terms.partner_codes(conn, partner_id, now))
        choices = _priceables(conn)
    return render_template("channels/partners/partner.html", p=p, prices=prices, codes=codes,
                           now=now, error=error, form=form or {}, **choices), status


@bp.get("/partners/<int:partner_id>")
@permission(MANAGE)
def partner(partner_id: int):
    return _partner_page(partner_id)


@bp.post("/partners/<int:partner_id>")
@permission(MANAGE)
def edit_partner(partner_id: int):
    form = request.form.to_dict()
    try:
        values = {"name": text_field("name", 200), "state": choice_field("state", PARTNER_STATES),
                  "address": text_field("address", 300, optional=True),
                  "may_bind_codes": request.form.get("may_bind_codes") == "yes"}
        if request.form.get("change_contact") == "yes":
            values.update(contact_name=text_field("contact_name", 100, optional=True),
                          contact_phone=text_field("contact_phone", 32, optional=True),
                          contact_email=text_field("contact_email", 254, optional=True))
        with db().begin() as conn:
            if _partner_or_404(conn, partner_id)["kind"] != "supplier":
                values.pop("may_bind_codes")
            terms.set_profile(conn, partner_id, actor=actor(), now=utcnow(), **values)
    except (HubError, BadForm) as e:
        return _partner_page(partner_id, error=refusal(e), form=form, status=422)
    ok(_("The partner's profile is saved."))
    return back("channel_terms.partner", partner_id=partner_id)


@bp.post("/partners/<int:partner_id>/prices")
@permission(MANAGE)
def add_price(partner_id: int):
    form = request.form.to_dict()
    try:
        what = request.form.get("what", "")
        product_id = number_field("product_id", 1, MAX_ID) if what != "tier" else None
        tier_id = number_field("price_tier_id", 1, MAX_ID) if what == "tier" else None
        now = utcnow()
        values = {"amount": yuan_field("amount"),
                  "effective_from": time_field("effective_from", now)}
        with db().begin() as conn:
            _partner_or_404(conn, partner_id)
            terms.add_price(conn, partner_id, product_id=product_id, price_tier_id=tier_id,
                            actor=actor(), now=now, **values)
    except (HubError, BadForm) as e:
        return _partner_page(partner_id, error=refusal(e), form=form, status=422)
    ok(_("The agreed price is in force from the time given."))
    return back("channel_terms.partner", partner_id=partner_id)


def _own_price(conn, partner_id: int, price_id: int):
    row = next((r for r in terms.list_prices(conn, partner_id) if r.id == price_id), None)
    if row is None:
        abort(404)
    return row


@bp.get("/partners/<int:partner_id>/prices/<int:price_id>/end")
@permission(MANAGE)
def confirm_end_price(partner_id: int, price_id: int):
    with db().connect() as conn:
        p = _partner_or_404(conn, partner_id)
        row = _own_price(conn, partner_id, price_id)
    return render_template("channels/partners/end_price.html", p=p, r=row)


@bp.post("/partners/<int:partner_id>/prices/<int:price_id>/end")
@permission(MANAGE)
def end_price(partner_id: int, price_id: int):
    try:
        now = utcnow()
        until = time_field("effective_until", now)
        with db().begin() as conn:
            _own_price(conn, partner_id, price_id)
            terms.end_price(conn, price_id, until, actor(), now)
    except (HubError, BadForm) as e:
        refused(refusal(e))
    else:
        ok(_("The agreed price ends at the time given: add the next one to follow it."))
    return back("channel_terms.partner", partner_id=partner_id)


# -- sales codes -------------------------------------------------------------------------------------


@bp.post("/partners/<int:partner_id>/codes")
@permission(MANAGE)
def create_code(partner_id: int):
    form = request.form.to_dict()
    try:
        product_id = number_field("product_id", 1, MAX_ID)
        name = text_field("name", 200)
        with db().begin() as conn:
            _partner_or_404(conn, partner_id)
            code = terms.create_code(conn, partner_id, product_id, name, actor(), utcnow())
            code_id = terms.code_id_of(conn, code)
    except (HubError, BadForm) as e:
        return _partner_page(partner_id, error=refusal(e), form=form, status=422)
    ok(_("Sales code %(code)s is made: bind it to the distributors and agents that may sell "
         "the product.", code=code))
    return back("channel_terms.code", code_id=code_id)


def _code_page(code_id: int, *, error: str = "", status: int = 200):
    with db().connect() as conn:
        try:
            row = terms.sales_code(conn, code_id)
        except HubError:
            abort(404)
        bound = terms.bindings(conn, code_id)
        sellers = terms.list_partners(conn, terms.SELLERS)
    return render_template("channels/partners/code.html", c=row, bound=bound, sellers=sellers,
                           error=error), status


@bp.get("/codes/<int:code_id>")
@permission(MANAGE)
def code(code_id: int):
    return _code_page(code_id)


@bp.post("/codes/<int:code_id>/<any(bind, unbind):action>")
@permission(MANAGE)
def bind(code_id: int, action: str):
    try:
        partner_id = number_field("partner_id", 1, MAX_ID)
        with db().begin() as conn:
            terms.sales_code(conn, code_id)
            change = terms.bind if action == "bind" else terms.unbind
            change(conn, code_id, partner_id, actor(), utcnow())
    except HubError as e:
        if e.code == "unknown_sales_code":
            abort(404)
        return _code_page(code_id, error=refusal(e), status=e.status)
    except BadForm as e:
        return _code_page(code_id, error=str(e), status=422)
    ok(_("The partner may sell the code's product now.") if action == "bind"
       else _("The partner may no longer sell the code's product."))
    return back("channel_terms.code", code_id=code_id)


@bp.get("/codes/<int:code_id>/withdraw")
@permission(MANAGE)
def confirm_withdraw(code_id: int):
    with db().connect() as conn:
        try:
            row = terms.sales_code(conn, code_id)
        except HubError:
            abort(404)
    return render_template("channels/partners/withdraw.html", c=row)


@bp.post("/codes/<int:code_id>/withdraw")
@permission(MANAGE)
def withdraw(code_id: int):
    with db().begin() as conn:
        try:
            terms.withdraw_code(conn, code_id, actor(), utcnow())
        except HubError:
            abort(404)
    ok(_("The sales code is withdrawn: no one may sell through it any more."))
    return back("channel_terms.code", code_id=code_id)
