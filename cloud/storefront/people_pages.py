"""Who a buyer's tickets may name, kept from the account page: the buyer names who they are
(verified once, as every person is, the result sent to their mobile), adds companions (each
verified the same way) and takes one off the list (tickets bought for them stay). The rules
are the buyers area's, the same the buyer API calls (:mod:`cloud.buyers.own_identity`,
:mod:`cloud.buyers.companions`); refusals are said beside the form, nothing stored."""

from __future__ import annotations

from flask import redirect, request, url_for

from cloud.buyers import companions as comp
from cloud.buyers.api import setting
from cloud.buyers.own_identity import verify_buyer
from cloud.core.errors import HubError
from cloud.storefront import browser_pages as buyer_session
from cloud.storefront.account_pages import account_page
from cloud.storefront.pages import bp
from cloud.web.web import engine
from cloud.web.words import rule_error

FIELDS = ("name", "doc_type", "doc_number")


def _named(prefix: str, done: str, act):
    """Name a person from the form with ``act(conn, buyer_id, name, doc_type, number)``, then
    back to the account with the ``done`` notice; a refusal beside the form (``prefix``: which
    one), the name and type kept, the number never shown back."""
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    f = {k: request.form.get(k, "").strip() for k in FIELDS}
    try:
        with engine().begin() as conn:
            act(conn, me.buyer_id, f["name"], f["doc_type"], f["doc_number"])
    except HubError as e:
        return account_page(me, error=rule_error(e), status=e.status,
                            form={f"{prefix}_{k}": v for k, v in f.items() if k != "doc_number"})
    anchor = "#verification" if prefix == "me" else "#companions"
    return redirect(url_for("shop.account", notice=done) + anchor, 303)


@bp.post("/<lang>/account/identity")
def verify_me():
    return _named("me", "checking", lambda conn, buyer, name, doc_type, number: verify_buyer(
        conn, buyer, name=name, doc_type=doc_type, number=number))


@bp.post("/<lang>/account/companions")
def add_companion():
    return _named("c", "added", lambda conn, buyer, name, doc_type, number: comp.add_companion(
        conn, buyer, name=name, doc_type=doc_type, doc_number=number,
        limit=setting("BUYER_COMPANION_LIMIT")))


@bp.post("/<lang>/account/companions/<int:companion_id>/remove")
def remove_companion(companion_id: int):
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    try:
        with engine().begin() as conn:
            comp.remove_companion(conn, me.buyer_id, companion_id)
    except HubError as e:
        return account_page(me, error=rule_error(e), status=e.status)
    return redirect(url_for("shop.account", notice="removed") + "#companions", 303)
