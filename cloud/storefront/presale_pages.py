"""The presale lottery on the public site: a presale's public page (its lots, window and
rules; before the draw the frozen list's SHA-256 and the list itself, then the seed, the
result and the winning application numbers, with how to check the draw), applying for a lot
(signed in), the buyer's applications and, for a winner while the window is open, choosing
seats on the lot's zones.

The rules are cloud/lottery/'s (:func:`cloud.lottery.applying.apply`,
:func:`cloud.lottery.choosing.choose_seats`); these pages turn forms into calls and refusals
into words. An application is paid through its order, on the order page like any order. The
public page and the published files are the same for everyone and cached as the browsing
pages are; the rest is the buyer's own (never cached), and another buyer's application is not
found.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.lottery import applying, choosing, views
from cloud.lottery.errors import LotteryError
from cloud.lottery.presales import Lot, lots
from cloud.storefront import browse, checkout, presale
from cloud.storefront import browser_pages as buyer_session
from cloud.storefront.pages import bp, cached, seat_layout
from cloud.web.limits import limited
from cloud.web.web import engine
from cloud.web.words import rule_error
from sync.timeutil import utcnow
from sync.websafe import whole_number

MAX_ID = 2**31 - 1


def _not_found() -> tuple[str, int]:
    return render_template("storefront/not_found.html"), 404


# -- public -------------------------------------------------------------------------------------

@bp.get("/<lang>/presales/<int:presale_id>")
def presale_page(presale_id: int):
    def render() -> tuple[str, int]:
        with engine().connect() as conn:
            p = presale.public_presale(conn, presale_id, utcnow())
            winners = views.public_winners(conn, presale_id) \
                if p is not None and p.result_sha256 else {}
        if p is None:
            return _not_found()
        return render_template("storefront/presale.html", p=p, winners=winners,
                               command=presale.verify_command(p)), 200
    return cached(render)


def _published(presale_id: int, which: str):
    with engine().connect() as conn:
        data = presale.published_file(conn, presale_id, which)
    if data is None:
        abort(404)
    response = current_app.response_class(data, mimetype="text/plain")
    response.charset = "utf-8"
    response.headers["Cache-Control"] = "public, max-age=60"
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/<lang>/presales/<int:presale_id>/applications.txt")
def presale_list(presale_id: int):
    """The frozen application list, byte for byte as its published SHA-256 was taken."""
    return _published(presale_id, "list")


@bp.get("/<lang>/presales/<int:presale_id>/results.txt")
def presale_results(presale_id: int):
    return _published(presale_id, "result")


# -- applying -----------------------------------------------------------------------------------

def _apply_page(me, presale_id: int, form: dict[str, Any], error: str | None = None,
                status: int = 200):
    with engine().connect() as conn:
        p = presale.public_presale(conn, presale_id, utcnow())
        if p is None:
            return _not_found()
        people = checkout.people(conn, me.buyer_id)
    return render_template("storefront/presale_apply.html", p=p, people=people, form=form,
                           error=error), status


@bp.get("/<lang>/presales/<int:presale_id>/apply")
def apply_page(presale_id: int):
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    return _apply_page(me, presale_id, request.args.to_dict())


def _asked(p: presale.PublicPresale) -> tuple[int, int]:
    lot_id = whole_number(request.form.get("lot", ""), 1, MAX_ID)
    if lot_id is None:
        raise LotteryError("unknown_lot", lot_id=request.form.get("lot", "")[:20],
                           field="lot_id")
    quantity = whole_number(request.form.get("quantity", ""), 1, p.max_quantity)
    if quantity is None:
        raise LotteryError("bad_quantity", limit=p.max_quantity, field="quantity")
    return lot_id, quantity


@bp.post("/<lang>/presales/<int:presale_id>/apply")
@limited("ORDER_LIMIT")
def apply(presale_id: int):
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    form = request.form.to_dict()
    try:
        with engine().begin() as conn:
            p = presale.public_presale(conn, presale_id, utcnow())
            if p is None:
                return _not_found()
            lot_id, quantity = _asked(p)
            keys = [request.form.get(f"holder_{i}", "") for i in range(quantity)]
            holders = presale.application_holders(conn, me.buyer_id, keys, p.real_name)
            made = applying.apply(conn, presale_id, lot_id, quantity, f"buyer:{me.buyer_id}",
                                  holders, channel="storefront")
    except HubError as e:
        return _apply_page(me, presale_id, form, rule_error(e), e.status)
    return redirect(url_for("shop.application", number=made.number), 303)


# -- the buyer's applications -------------------------------------------------------------------

@bp.get("/<lang>/applications")
def applications():
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    with engine().connect() as conn:
        mine = views.applications_of(conn, f"buyer:{me.buyer_id}")
    return render_template("storefront/presale_applications.html", apps=mine)


def _mine(conn, me, number: str) -> dict[str, Any]:
    try:
        return views.buyer_application(conn, f"buyer:{me.buyer_id}", number)
    except HubError:
        abort(404)


def choosing_now(a: dict[str, Any]) -> bool:
    """A winner without seats while the window is open."""
    return a["state"] == "won" and a["presale_state"] == "drawn" \
        and a["choose_closes_at"] is not None and utcnow() < a["choose_closes_at"]


@bp.get("/<lang>/applications/<number>")
def application(number: str):
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    with engine().connect() as conn:
        a = _mine(conn, me, number)
        p = presale.public_presale(conn, a["presale_id"], utcnow())
    return render_template("storefront/presale_application.html", a=a,
                           tz=p.timezone if p else None, choosing=choosing_now(a),
                           chosen=request.args.get("seats") == "chosen")


# -- choosing seats -----------------------------------------------------------------------------

def choice_layout(zones: list[dict[str, Any]], lot: Lot) -> dict[str, Any]:
    """The lot's zones drawn one under the other on one map: each zone's title row, then its
    rows of seats (the winner's free ones in the tier's colour, the rest grey)."""
    tier = browse.Tier(lot.price_tier_id, "", lot.tier, lot.amount, lot.currency,
                       lot.category, browse.Window("open", None, None))
    placed, rows, titles, width, y = [], [], [], 0, 0
    for z in zones:
        drawn = seat_layout(z["seat_map"], [tier])
        titles.append({"name": z["name"], "y": y})
        y += 1
        placed += [{**s, "y": s["y"] + y} for s in drawn["seats"]]
        rows += [{**r, "y": r["y"] + y} for r in drawn["rows"]]
        width, y = max(width, drawn["width"]), y + drawn["height"]
    return {"seats": placed, "rows": rows, "titles": titles, "width": width, "height": y,
            "free": [s for s in placed if s["status"] == "free"],
            "colour": drawn["legend"][0][1] if zones else None}


def _seats_page(me, number: str, error: str | None = None, status: int = 200):
    now = utcnow()
    with engine().connect() as conn:
        a = _mine(conn, me, number)
        lot = next((x for x in lots(conn, a["presale_id"]) if x.id == a["lot_id"]),
                   None)
        if lot is None:
            abort(404)
        zones = presale.choice_zones(conn, a["presale_id"], lot, now) \
            if choosing_now(a) else []
        p = presale.public_presale(conn, a["presale_id"], now)
    return render_template("storefront/presale_seats.html", a=a, lot=lot,
                           layout=choice_layout(zones, lot), choosing=choosing_now(a),
                           tz=p.timezone if p else None, error=error), status


@bp.get("/<lang>/applications/<number>/seats")
def seats_page(number: str):
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    return _seats_page(me, number)


@bp.post("/<lang>/applications/<number>/seats")
def choose_seats(number: str):
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    picked = [whole_number(s, 1, MAX_ID) for s in request.form.getlist("seat")]
    try:
        with engine().begin() as conn:
            a = _mine(conn, me, number)
            if None in picked:
                raise LotteryError("bad_seats", quantity=a["quantity"], field="seats")
            choosing.choose_seats(conn, f"buyer:{me.buyer_id}", number, picked)
    except HubError as e:
        return _seats_page(me, number, rule_error(e), e.status)
    return redirect(url_for("shop.application", number=number, seats="chosen"), 303)


@bp.app_template_global()
def shop_application_state_words(state: str) -> str:
    return {"pending_payment": _("Waiting for payment"),
            "paid": _("Paid: in the draw"),
            "void": _("Not paid in time: not in the draw"),
            "refused": _("Not in the draw: it failed the check before the draw"),
            "won": _("Drawn: choose your seats"),
            "lost": _("Not drawn: the money goes back to you"),
            "refunding": _("Not drawn: the refund is on its way"),
            "refunded": _("Not drawn: refunded"),
            "seated": _("Drawn: seats given, tickets issued")}.get(state, state)


@bp.app_template_global()
def shop_presale_state_words(state: str, window: str) -> str:
    if state == "open":
        return {"soon": _("Applications open soon"), "open": _("Taking applications"),
                "closed": _("Applications closed: the list is being frozen")}[window]
    return {"frozen": _("Applications frozen: waiting for the draw"),
            "drawn": _("Drawn: winners choose their seats"),
            "assigned": _("Drawn: every winner has seats")}.get(state, state)
