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


def _typed() -> dict[str, str]:
    return {k: request.form.get(k, "").strip() for k in FIELDS}


@bp.post("/<lang>/account/identity")
def verify_me():
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    f = _typed()
    try:
        with engine().begin() as conn:
            verify_buyer(conn, me.buyer_id, name=f["name"], doc_type=f["doc_type"],
                         number=f["doc_number"])
    except HubError as e:
        return account_page(me, error=rule_error(e), status=e.status,
                            form={f"me_{k}": v for k, v in f.items() if k != "doc_number"})
    return redirect(url_for("shop.account", notice="checking") + "#verification", 303)


@bp.post("/<lang>/account/companions")
def add_companion():
    me, away = buyer_session.need_buyer()
    if away is not None:
        return away
    f = _typed()
    try:
        with engine().begin() as conn:
            comp.add_companion(conn, me.buyer_id, name=f["name"], doc_type=f["doc_type"],
                               doc_number=f["doc_number"],
                               limit=setting("BUYER_COMPANION_LIMIT"))
    except HubError as e:
        return account_page(me, error=rule_error(e), status=e.status,
                            form={f"c_{k}": v for k, v in f.items() if k != "doc_number"})
    return redirect(url_for("shop.account", notice="added") + "#companions", 303)


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
