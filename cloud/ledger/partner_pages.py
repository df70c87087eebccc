"""The finance pages' partners (``/finance/partners``) with their accounts, portal users and
statements, and the split rules (``/finance/rules``). Seeing needs ``finance.view``; creating
and editing partners, their portal users and the rules ``finance.manage``. The rules and
their audit are cloud/ledger/partners.py's; a rule is never edited, it ends and a new one
starts, so a change applies only to later sales.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import abort, render_template, request
from flask_babel import gettext as _

from cloud.catalog.tables import events
from cloud.core.errors import HubError
from cloud.ledger import partners, reads, settlement
from cloud.ledger.errors import LedgerError
from cloud.ledger.pages import (
    MANAGE,
    MAX_ID,
    VIEW,
    BadForm,
    bad,
    bp,
    choice_field,
    number_field,
    percent_field,
    refusal,
    text_field,
    time_field,
    yuan_field,
)
from cloud.ledger.tables import PARTNER_KINDS, SPLIT_PARTS
from cloud.web.query import query_choice
from cloud.web.web import actor, back, ok, permission, refused
from cloud.web.web import engine as db
from sync.timeutil import utcnow

PROVIDERS = ("wechat", "alipay", "offline")  # a rule's payment provider, as posting names it


def partner_kind_words(kind: str) -> str:
    return {"organiser": _("organiser"), "venue": _("venue"), "distributor": _("distributor"),
            "agent": _("agent"), "supplier": _("supplier")}.get(kind, kind)


def partner_state_words(state: str) -> str:
    return {"active": _("active"), "suspended": _("suspended"),
            "disabled": _("disabled")}.get(state, state)


@bp.context_processor
def _words() -> dict:
    return {"partner_kind_words": partner_kind_words, "partner_state_words": partner_state_words,
            "PARTNER_KINDS": PARTNER_KINDS, "SPLIT_PARTS": SPLIT_PARTS,
            "RULE_CHANNELS": partners.CHANNELS}


def _partner_or_404(conn, partner_id: int):
    try:
        return partners.partner(conn, partner_id)
    except LedgerError:
        abort(404)


# -- partners ---------------------------------------------------------------------------------------


def _index_page(form: dict, error: str = "", status: int = 200):
    with db().connect() as conn:
        rows = partners.list_partners(conn)
    return render_template("ledger/partners.html", rows=rows, form=form, error=error), status


@bp.get("/partners")
@permission(VIEW)
def partner_list():
    return _index_page({"kind": "organiser", "settle_days": "7"})


@bp.post("/partners")
@permission(MANAGE)
def create_partner():
    form = request.form.to_dict()
    try:
        values = {"code": text_field("code", 20), "name": text_field("name", 200),
                  "kind": choice_field("kind", PARTNER_KINDS),
                  "settle_days": number_field("settle_days", 0, 90)}
        with db().begin() as conn:
            partner_id = partners.create_partner(conn, actor=actor(), now=utcnow(), **values)
    except (HubError, BadForm) as e:
        return _index_page(form, refusal(e), 422)
    ok(_("Partner %(code)s is set up, with its payable account.", code=values["code"]))
    return back("finance.partner", partner_id=partner_id)


@bp.get("/partners/<int:partner_id>")
@permission(VIEW)
def partner(partner_id: int):
    return _partner_page(partner_id)


def _partner_page(partner_id: int, *, edit_error: str = "", user_error: str = "",
                  user_form: dict | None = None, status: int = 200):
    with db().connect() as conn:
        p = _partner_or_404(conn, partner_id)
        accounts = reads.partner_accounts(conn, partner_id)
        users = partners.portal_users(conn, partner_id)
        statements = settlement.statements(conn, partner_id=partner_id)
        rules = [r for r in partners.list_rules(conn) if r.partner_id == partner_id]
    return render_template("ledger/partner.html", p=p, accounts=accounts, users=users,
                           statements=statements, rules=rules, edit_error=edit_error,
                           user_error=user_error, user_form=user_form or {}), status


@bp.post("/partners/<int:partner_id>")
@permission(MANAGE)
def edit_partner(partner_id: int):
    try:
        values = {"name": text_field("name", 200),
                  "settle_days": number_field("settle_days", 0, 90),
                  "state": choice_field("state", partners.PARTNER_STATES)}
        with db().begin() as conn:
            _partner_or_404(conn, partner_id)
            partners.edit_partner(conn, partner_id, actor=actor(), now=utcnow(), **values)
    except (HubError, BadForm) as e:
        return _partner_page(partner_id, edit_error=refusal(e), status=422)
    ok(_("The partner is saved."))
    return back("finance.partner", partner_id=partner_id)


@bp.post("/partners/<int:partner_id>/users")
@permission(MANAGE)
def add_user(partner_id: int):
    form = {"username": request.form.get("username", ""),
            "display_name": request.form.get("display_name", "")}
    try:
        username = text_field("username", 80)
        display_name = text_field("display_name", 200)
        password = request.form.get("password", "")
        if not password:
            raise bad("password", _("give a value."))
        if password != request.form.get("password_again", ""):
            raise BadForm(_("The two passwords differ."))
        with db().begin() as conn:
            _partner_or_404(conn, partner_id)
            partners.add_portal_user(conn, partner_id, username, display_name, password,
                                     actor(), utcnow())
    except (HubError, BadForm) as e:
        return _partner_page(partner_id, user_error=refusal(e), user_form=form, status=422)
    ok(_("Portal user %(username)s can sign in at the partner portal now.", username=username))
    return back("finance.partner", partner_id=partner_id)


@bp.post("/partners/<int:partner_id>/users/<int:user_id>/state")
@permission(MANAGE)
def user_state(partner_id: int, user_id: int):
    try:
        state = choice_field("state", partners.USER_STATES)
        with db().begin() as conn:
            if user_id not in {u.id for u in partners.portal_users(conn, partner_id)}:
                abort(404)  # a user of another partner is not this one's
            partners.set_portal_user_state(conn, user_id, state, actor(), utcnow())
    except (HubError, BadForm) as e:
        refused(refusal(e))
    else:
        ok(_("The portal user is enabled.") if state == "active"
           else _("The portal user is disabled: they cannot sign in any more."))
    return back("finance.partner", partner_id=partner_id)


# -- split rules ------------------------------------------------------------------------------------


def _not_before(moment, now):
    """A time typed to the minute as now's minute means now (a rule starts or ends no earlier
    than now); anything earlier is left for the rule to refuse."""
    return now if now - timedelta(minutes=1) <= moment < now else moment


def _rules_page(form: dict, error: str = "", status: int = 200):
    show = query_choice("show", ("current", "all"), "current")
    with db().connect() as conn:
        rows = partners.list_rules(conn, at=utcnow() if show == "current" else None)
        choices = partners.list_partners(conn)
        event_rows = conn.execute(sa.select(events.c.id, events.c.code, events.c.name)
                                  .order_by(events.c.code)).all()
    return render_template("ledger/rules.html", rows=rows, partners=choices,
                           events=event_rows, show=show, form=form, error=error,
                           now=utcnow()), status


@bp.get("/rules")
@permission(VIEW)
def rules():
    return _rules_page({"part": "organiser"})


@bp.post("/rules")
@permission(MANAGE)
def add_rule():
    form = request.form.to_dict()
    try:
        part = choice_field("part", SPLIT_PARTS)
        values = {
            "part": part,
            "partner_id": None if part in partners.PLATFORM_PARTS
            else number_field("partner_id", 1, MAX_ID),
            "basis_points": percent_field("percent"),
            "fixed_per_ticket": yuan_field("fixed"),
            "effective_from": time_field("effective_from", default_now=True),
            "event_id": number_field("event_id", 1, MAX_ID, optional=True),
            "product_id": number_field("product_id", 1, MAX_ID, optional=True),
            "channel": choice_field("channel", partners.CHANNELS, optional=True),
            "provider": choice_field("provider", PROVIDERS, optional=True)}
        now = utcnow()
        values["effective_from"] = _not_before(values["effective_from"], now)
        with db().begin() as conn:
            rule_id = partners.add_rule(conn, actor=actor(), now=now, **values)
    except (HubError, BadForm) as e:
        return _rules_page(form, refusal(e), 422)
    ok(_("Split rule %(id)s is in force from the time given: it applies to later sales.",
         id=rule_id))
    return back("finance.rules")


@bp.post("/rules/<int:rule_id>/end")
@permission(MANAGE)
def end_rule(rule_id: int):
    try:
        now = utcnow()
        until = _not_before(time_field("effective_until", default_now=True), now)
        with db().begin() as conn:
            partners.end_rule(conn, rule_id, until, actor(), now)
    except LedgerError as e:
        if e.code == "unknown_rule":
            abort(404)
        refused(refusal(e))
    except BadForm as e:
        refused(str(e))
    else:
        ok(_("Split rule %(id)s ends: later sales are split without it.", id=rule_id))
    return back("finance.rules")
