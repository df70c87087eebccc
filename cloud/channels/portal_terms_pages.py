"""The partner portal's terms (``/partner/terms``): a distributor or agent sees the products
its sales codes let it sell and the price agreed for each now; a supplier sees its sales codes
and whom each is bound to, and binds and unbinds them itself when its profile allows.

These pages sit behind the portal's own sign-in, session cookie and CSRF token
(cloud/ledger/portal_pages.py ``share_session``). Everything read names the signed-in user's
partner: another supplier's code is "not found", exactly like one that does not exist.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from cloud.channels import partner_terms as terms
from cloud.channels.partner_pages import code_state_words, partner_kind_words, refusal
from cloud.core.errors import HubError
from cloud.ledger.portal_pages import share_session
from cloud.web.web import engine
from sync.timeutil import utcnow
from sync.websafe import whole_number

bp = Blueprint("portal_terms", __name__, url_prefix="/partner/terms")
share_session(bp)


@bp.context_processor
def _words() -> dict:
    return {"code_state_words": code_state_words, "partner_kind_words": partner_kind_words}


def _me():
    return g.portal_user


def _kind(conn) -> str:
    return terms.profile(conn, _me().partner_id)["kind"]


@bp.get("/")
def start():
    with engine().connect() as conn:
        kind = _kind(conn)
    return redirect(url_for("portal_terms.codes" if kind == "supplier"
                            else "portal_terms.products"), 303)


@bp.get("/products")
def products():
    """What the partner may sell now, with the price agreed for each."""
    with engine().connect() as conn:
        if _kind(conn) not in terms.SELLERS:
            abort(404)
        rows = terms.partner_codes(conn, _me().partner_id, utcnow())
    return render_template("portal/terms/products.html", rows=rows)


def _codes_page(error: str = "", status: int = 200):
    me = _me()
    with engine().connect() as conn:
        if _kind(conn) != "supplier":
            abort(404)
        rows = terms.list_codes(conn, supplier_id=me.partner_id)
        bound = {r.id: terms.bindings(conn, r.id) for r in rows}
        allowed = terms.may_bind_codes(conn, me.partner_id)
        sellers = terms.list_partners(conn, terms.SELLERS) if allowed else []
    return render_template("portal/terms/codes.html", rows=rows, bound=bound, allowed=allowed,
                           sellers=[s for s in sellers if s.state == "active"],
                           error=error), status


@bp.get("/codes")
def codes():
    return _codes_page()


@bp.post("/codes/<int:code_id>/<any(bind, unbind):action>")
def bind(code_id: int, action: str):
    """A supplier's own portal user binds or unbinds one of its codes (if its profile
    allows: otherwise ``binding_not_allowed``)."""
    me = _me()
    partner_id = whole_number(request.form.get("partner_id", "").strip(), 1, 2**31 - 1)
    if partner_id is None:
        return _codes_page(_("Choose a distributor or agent."), 422)
    try:
        with engine().begin() as conn:
            change = terms.bind if action == "bind" else terms.unbind
            change(conn, code_id, partner_id, f"partner_user:{me.id}", utcnow(),
                   as_supplier=me.partner_id)
    except HubError as e:
        if e.code == "unknown_sales_code":
            abort(404)
        return _codes_page(refusal(e), e.status)
    return redirect(url_for("portal_terms.codes"), 303)
