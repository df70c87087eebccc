"""The risk flag pages (``buyers.flag``): the list (live or all, by what they block and whom),
a new flag for a holder's document or a buyer, a flag's page, and lifting it after a
confirmation. The rules are cloud/sales/flags.py; these views only translate.

A document number arrives only in a POST body and leaves masked, never in a URL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, render_template, request
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.sales.flags import (
    FLAG_BLOCKS,
    FLAG_STATES,
    FLAG_TARGETS,
    MAX_REASON,
    add_flag,
    get_flag,
    lift_flag,
    list_flags,
)
from cloud.web.query import query_choice
from cloud.web.web import actor, back, engine, ok, page_blueprint, permission, refused
from cloud.web.words import rule_error

bp = page_blueprint("flags")
PERMISSION = "buyers.flag"
LIST_STATES = (*FLAG_STATES, "all")


@bp.get("/flags")
@permission(PERMISSION)
def index():
    state = query_choice("state", LIST_STATES, "live")
    blocks = query_choice("blocks", (*FLAG_BLOCKS, "any"), "any")
    target = query_choice("target", (*FLAG_TARGETS, "any"), "any")
    with engine().connect() as conn:
        rows = list_flags(conn, state=None if state == "all" else state,
                          blocks=None if blocks == "any" else blocks,
                          target=None if target == "any" else target)
    return render_template("sales/flags.html", rows=rows, state=state, blocks=blocks,
                           target=target, states=LIST_STATES)


def _form_page(errors: dict, status: int = 200):
    return render_template("sales/flag_new.html", errors=errors, form=request.form,
                           max_reason=MAX_REASON), status


@bp.get("/flags/new")
@permission(PERMISSION)
def new():
    return _form_page({})


def _expiry(text: str) -> datetime | None:
    """The form's expiry, a ``datetime-local`` value in UTC (empty: none)."""
    if not text.strip():
        return None
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@bp.post("/flags")
@permission(PERMISSION)
def create():
    f = request.form
    target = f.get("target", "")
    try:
        expires_at = _expiry(f.get("expires_at", "")[:40])
    except ValueError:
        return _form_page({"expires_at": _("Give a date and time.")}, 422)
    holder = (f.get("doc_type", ""), f.get("doc_number", "")[:80]) if target == "holder" \
        else None
    buyer = f.get("buyer", "").strip()[:80] if target == "buyer" else None
    if buyer is not None and buyer.isdigit():
        buyer = f"buyer:{buyer}"
    if target not in FLAG_TARGETS:
        holder = buyer = None
    try:
        with engine().begin() as conn:
            flag_id = add_flag(conn, blocks=f.get("blocks", ""), reason=f.get("reason", "")[:1000],
                               actor=actor(), holder=holder, buyer=buyer or None,
                               expires_at=expires_at)
    except HubError as e:
        return _form_page({str(e.params.get("field") or "target"): rule_error(e)}, 422)
    ok(_("The flag is in force."))
    return back("flags.detail", flag_id=flag_id)


def _flag_or_404(flag_id: int):
    with engine().connect() as conn:
        try:
            return get_flag(conn, flag_id)
        except HubError:
            abort(404)


@bp.get("/flags/<int:flag_id>")
@permission(PERMISSION)
def detail(flag_id: int):
    return render_template("sales/flag.html", f=_flag_or_404(flag_id), lifting=False,
                           max_reason=MAX_REASON)


@bp.get("/flags/<int:flag_id>/lift")
@permission(PERMISSION)
def confirm_lift(flag_id: int):
    return render_template("sales/flag.html", f=_flag_or_404(flag_id), lifting=True,
                           max_reason=MAX_REASON)


@bp.post("/flags/<int:flag_id>/lift")
@permission(PERMISSION)
def lift(flag_id: int):
    try:
        with engine().begin() as conn:
            lift_flag(conn, flag_id, actor(), request.form.get("reason", "")[:1000])
    except HubError as e:
        if e.code == "unknown_flag":
            abort(404)
        refused(rule_error(e))
        return back("flags.confirm_lift", flag_id=flag_id)
    ok(_("The flag is lifted."))
    return back("flags.detail", flag_id=flag_id)
