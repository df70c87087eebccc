"""The partner portal's pages for the partner API (under ``/partner/``, with the portal's own
sign-in, session and CSRF token: cloud/ledger/portal_pages.py ``share_session``).

- ``/partner/api``: open to anyone — how to sign a request, with worked examples in Python and
  curl, the list of calls and the link to the OpenAPI document.
- ``/partner/api-keys``: the signed-in partner's keys (never a secret), a form to make one for
  one of its channels, and each key's latest requests. A new key's secret (made or rotated) is
  shown once, on the answer to the form, and never again. Rotating and revoking ask first.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from cloud.channels import api_keys, signing
from cloud.channels.api_keys import ApiKeyError
from cloud.channels.partner_openapi import document
from cloud.channels.tables import API_SCOPES
from cloud.ledger.portal_pages import share_session, signed_in_partner
from cloud.web.web import engine
from cloud.web.words import rule_error
from sync.timeutil import utcnow

bp = share_session(Blueprint("partner_keys", __name__, url_prefix="/partner"),
                   public=frozenset({"partner_keys.api_docs"}))

SCOPE_WORDS = {
    "products:read": _l("read products and their availability"),
    "orders:write": _l("place, confirm and cancel orders"),
    "orders:read": _l("read orders and their tickets"),
    "refunds:write": _l("give tickets back"),
}
STATE_WORDS = {"active": _l("active"), "expiring": _l("good until it expires"),
               "expired": _l("expired"), "revoked": _l("revoked")}
EXAMPLE = {"key_id": "wk_0123456789abcdef0123", "secret": "example-secret-do-not-use",
           "timestamp": 1767225600, "nonce": "3f2b8c1d9e7a4b6c",
           "path": "/api/partner/v1/orders",
           "body": '{"lines":[{"product_id":7,"day":"2026-01-01","quantity":2}],'
                   '"confirm":true}'}


def _actor() -> str:
    return f"partner_user:{signed_in_partner().id}"


@bp.context_processor
def _words() -> dict:
    return {"scope_words": lambda s: str(SCOPE_WORDS.get(s, s)),
            "key_state_words": lambda s: str(STATE_WORDS.get(s, s)), "API_SCOPES": API_SCOPES}


def _example() -> dict:
    """The documentation's worked example: a request and its signature, as the hub computes
    them (so the page can never disagree with the check)."""
    e = EXAMPLE
    body = e["body"].encode()
    stamp = str(e["timestamp"])
    return {**e, "canonical": signing.canonical("POST", e["path"], stamp, e["nonce"], body),
            "body_sha256": signing.body_digest(body),
            "signature": signing.sign(e["secret"], "POST", e["path"], stamp, e["nonce"],
                                      body)}


@bp.get("/api")
def api_docs():
    paths = document()["paths"]
    calls = [(method.upper(), path, op["summary"], op.get("x-wicket-scope"))
             for path, ops in paths.items() for method, op in ops.items()]
    return render_template("partner_keys/api.html", calls=calls, ex=_example(),
                           window=signing.WINDOW_S, headers=signing.HEADERS)


def _keys_page(status: int = 200, error: str | None = None, form: dict | None = None):
    me = signed_in_partner()
    now = utcnow()
    with engine().connect() as conn:
        keys = api_keys.list_keys(conn, me.partner_id, now)
        chans = api_keys.partner_channels(conn, me.partner_id)
    revoked = request.args.get("revoked") if request.method == "GET" else None
    notice = _("Key %(key)s is revoked.", key=revoked) if any(
        k["key_id"] == revoked and k["state"] == "revoked" for k in keys) else None
    return render_template("partner_keys/keys.html", keys=keys, channels=chans, error=error,
                           notice=notice,
                           form=form or {"per_minute": api_keys.DEFAULT_PER_MINUTE,
                                         "scopes": list(API_SCOPES)}), status


@bp.get("/api-keys")
def keys():
    return _keys_page()


@bp.post("/api-keys")
def create():
    me = signed_in_partner()
    raw_channel, raw_limit = request.form.get("channel_id", ""), request.form.get("per_minute",
                                                                                   "")
    form = {"name": request.form.get("name", "")[:80], "channel_id": raw_channel,
            "per_minute": raw_limit[:9], "scopes": request.form.getlist("scopes")}
    try:
        with engine().begin() as conn:
            key_id, secret = api_keys.create_key(
                conn, me.partner_id, int(raw_channel) if raw_channel.isdigit() else None,
                form["name"], form["scopes"], int(raw_limit) if raw_limit.isdigit()
                and len(raw_limit) < 10 else None, _actor(), utcnow())
    except ApiKeyError as e:
        return _keys_page(e.status, rule_error(e), form)
    return render_template("partner_keys/secret.html", key_id=key_id, secret=secret,
                           rotated=None)


def _own(key_id: str) -> dict:
    """The signed-in partner's key, as listed; 404 for another partner's or none."""
    with engine().connect() as conn:
        found = [k for k in api_keys.list_keys(conn, signed_in_partner().partner_id, utcnow())
                 if k["key_id"] == key_id]
    if not found:
        abort(404)
    return found[0]


@bp.get("/api-keys/<key_id>")
def key(key_id: str):
    row = _own(key_id)
    with engine().connect() as conn:
        log = api_keys.access_log(conn, signed_in_partner().partner_id, key_id)
    return render_template("partner_keys/key.html", k=row, log=log)


@bp.get("/api-keys/<key_id>/<any(rotate, revoke):action>")
def confirm(key_id: str, action: str):
    return render_template("partner_keys/confirm.html", k=_own(key_id), action=action,
                           overlap_hours=int(api_keys.OVERLAP.total_seconds() // 3600))


@bp.post("/api-keys/<key_id>/rotate")
def rotate(key_id: str):
    row = _own(key_id)
    try:
        with engine().begin() as conn:
            new_id, secret = api_keys.rotate_key(conn, signed_in_partner().partner_id,
                                                 key_id, _actor(), utcnow())
    except ApiKeyError as e:
        return _keys_page(e.status, rule_error(e))
    return render_template("partner_keys/secret.html", key_id=new_id, secret=secret,
                           rotated=row)


@bp.post("/api-keys/<key_id>/revoke")
def revoke(key_id: str):
    _own(key_id)
    try:
        with engine().begin() as conn:
            api_keys.revoke_key(conn, signed_in_partner().partner_id, key_id, _actor(),
                                utcnow())
    except ApiKeyError as e:
        return _keys_page(e.status, rule_error(e))
    return redirect(url_for("partner_keys.keys", revoked=key_id), 303)

