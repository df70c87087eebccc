"""The staff pages of partners' accounts (``/channels/accounts``): every distributor, agent and
supplier with its prepaid balance (备用金), credit limit (授信), the credit it has not used and
the balance it is warned at; a partner's page with its latest account entries and the forms
that change them; its monthly credit statement (and its CSV); its webhooks.

Seeing needs ``finance.view``. Money moves only with ``finance.manage``: a top-up (the bank's
reference typed in) and a repayment of credit, each shown for a confirmation first and posted
only from it; the same reference entered again posts nothing and says so. The credit limit,
the warning threshold and the webhooks are ``channels.manage``; a webhook's secret is shown on
the answer to its form, once; disabling one asks first.

The rules, their keys and their audit are :mod:`cloud.channels.accounts` and
:mod:`cloud.channels.webhooks`; these views read forms (amounts typed in yuan, turned into fen
exactly) and word refusals in the page's language, amounts in yuan.
"""

from __future__ import annotations

import csv
import io
import re

from flask import Response, abort, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from cloud.channels import accounts, webhooks
from cloud.channels.tables import WEBHOOK_EVENTS
from cloud.core.errors import HubError
from cloud.inventory.pages import parse_amount
from cloud.ledger import partners
from cloud.ledger.errors import LedgerError
from cloud.ledger.partner_pages import partner_kind_words
from cloud.web.error_words import ERROR_WORDS
from cloud.web.query import BadArgument
from cloud.web.web import actor, back, engine, money, ok, page_blueprint, permission, refused
from cloud.web.words import rule_error
from sync.timeutil import CHINA, utcnow

bp = page_blueprint("channel_accounts", url_prefix="/channels/accounts")
VIEW = "finance.view"
MONEY = "finance.manage"
MANAGE = "channels.manage"
ZONE = "Asia/Shanghai"
CURRENCY = "CNY"
ACCOUNT_KINDS = ("distributor", "agent", "supplier")  # the partners that order from accounts
_YUAN_TEXT = re.compile(r"[0-9][0-9,]{0,13}(\.[0-9]{1,2})?")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
# the parameters of a rule's refusal that are amounts in fen (shown in yuan here)
_AMOUNTS = ("available", "wanted", "unused", "cut", "owed", "amount", "left")

ENTRY_WORDS = {
    "topup": lazy_gettext("top-up"), "payment": lazy_gettext("top-up paid online"),
    "credit_limit": lazy_gettext("credit limit changed"),
    "credit_repayment": lazy_gettext("credit repaid"),
    "account_payment": lazy_gettext("order paid"),
    "account_refund": lazy_gettext("order refunded"),
}
ACCOUNT_WORDS = {"prepaid": lazy_gettext("prepaid balance"),
                 "credit": lazy_gettext("unused credit")}
LINE_WORDS = {"charge": lazy_gettext("order on credit"), "refund": lazy_gettext("refund"),
              "repayment": lazy_gettext("repayment")}
EVENT_WORDS = {"order.confirmed": lazy_gettext("an order is confirmed"),
               "order.refunded": lazy_gettext("an order is refunded"),
               "ticket.used": lazy_gettext("a ticket is used at a gate")}
HOOK_STATE_WORDS = {"active": lazy_gettext("active"), "disabled": lazy_gettext("disabled")}


def words_of(table: dict, key) -> str:
    return str(table.get(key, key))


@bp.context_processor
def _helpers() -> dict:
    return {"ZONE": ZONE, "CURRENCY": CURRENCY, "VIEW": VIEW, "MONEY": MONEY,
            "MANAGE": MANAGE, "WEBHOOK_EVENTS": WEBHOOK_EVENTS,
            "partner_kind_words": partner_kind_words,
            "entry_words": lambda k: words_of(ENTRY_WORDS, k),
            "account_words": lambda k: words_of(ACCOUNT_WORDS, k),
            "line_words": lambda k: words_of(LINE_WORDS, k),
            "event_words": lambda k: words_of(EVENT_WORDS, k),
            "hook_state_words": lambda k: words_of(HOOK_STATE_WORDS, k),
            "yuan": yuan_text}


def yuan_text(fen: int) -> str:
    """Fen as yuan with two decimals, as a form takes it back (``1200.50``)."""
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"


FIELD_WORDS = {"amount": lazy_gettext("Amount"), "reference": lazy_gettext("Bank reference"),
               "limit": lazy_gettext("Credit limit"),
               "warn_below": lazy_gettext("Warn at a prepaid balance of"),
               "url": lazy_gettext("Address"), "events": lazy_gettext("Events")}


def refusal_words(e: HubError) -> str:
    """A rule's refusal in the page's language, its amounts in yuan (the rule says fen) and
    the field it names by its label."""
    if e.code not in ERROR_WORDS or not ("field" in e.params
                                         or any(k in e.params for k in _AMOUNTS)):
        return rule_error(e)
    params = {k: money(v, CURRENCY) if k in _AMOUNTS and isinstance(v, int) else v
              for k, v in e.params.items()}
    if "field" in params:
        params["field"] = words_of(FIELD_WORDS, params["field"])
    return str(ERROR_WORDS[e.code]) % params


class _BadField(ValueError):
    """A form field the page cannot read: its name and the words beside it."""

    def __init__(self, field: str, words: str):
        super().__init__(field)
        self.field, self.words = field, words


def _yuan_field(name: str, zero: bool = False) -> int:
    """An amount typed in yuan (``1,200.50``) as fen, exactly; zero only where it means none."""
    raw = request.form.get(name, "").strip()
    fen = parse_amount(raw) if _YUAN_TEXT.fullmatch(raw) else None
    if fen is None or fen > accounts.MAX_AMOUNT or (fen == 0 and not zero):
        raise _BadField(name, _("An amount in yuan, such as 1200.50.") if zero else
                        _("An amount in yuan above zero, such as 1200.50."))
    return fen


def _reference_field() -> str:
    raw = request.form.get("reference", "").strip()
    if not re.fullmatch(r"[A-Za-z0-9._:/-]{1,64}", raw):
        raise _BadField("reference", _("The bank's reference: up to 64 letters, digits and "
                                       ". _ : / -"))
    return raw


def _partner_or_404(conn, partner_id: int):
    try:
        p = partners.partner(conn, partner_id)
    except LedgerError:
        abort(404)
    if p.kind not in ACCOUNT_KINDS:
        abort(404)  # an organiser or a venue orders nothing from an account
    return p


# -- the list --------------------------------------------------------------------------------


@bp.get("")
@permission(VIEW)
def index():
    with engine().connect() as conn:
        rows = [{"p": p, **accounts.balances(conn, p.id)}
                for p in partners.list_partners(conn) if p.kind in ACCOUNT_KINDS]
    return render_template("channels/accounts/index.html", rows=rows)


# -- a partner's page ------------------------------------------------------------------------


def _partner_page(partner_id: int, errors: dict | None = None, status: int = 200,
                  form: dict | None = None):
    with engine().connect() as conn:
        p = _partner_or_404(conn, partner_id)
        page = {"p": p, "b": accounts.balances(conn, partner_id),
                "entries": accounts.recent_entries(conn, partner_id),
                "hooks": webhooks.webhooks_of(conn, partner_id)}
    return render_template("channels/accounts/partner.html", errors=errors or {},
                           form=form or {}, this_month=_this_month(), **page), status


@bp.get("/<int:partner_id>")
@permission(VIEW)
def partner(partner_id: int):
    return _partner_page(partner_id)


def _refused(partner_id: int, e: Exception, form: dict | None = None):
    """The partner's page again, the refusal beside the field it names (nothing changed)."""
    refused(_("Nothing was changed: see the marked fields."))
    if isinstance(e, _BadField):
        return _partner_page(partner_id, {e.field: e.words}, 422, form)
    assert isinstance(e, HubError)
    field = str(e.params.get("field") or "form")
    return _partner_page(partner_id, {field: refusal_words(e)},
                         409 if e.status == 409 else 422, form)


def _money_form(partner_id: int, action: str, work, done):
    """A top-up or a repayment: read, then shown for a confirmation (nothing posted), then
    posted from the confirmation. ``work(conn, amount, reference)`` posts; ``done(amount,
    reference)`` words the flash. A reference entered before posts nothing and is refused."""
    form = {"amount": request.form.get("amount", "")[:20],
            "reference": request.form.get("reference", "")[:64], "action": action}
    try:
        amount, reference = _yuan_field("amount"), _reference_field()
        with engine().connect() as conn:
            p = _partner_or_404(conn, partner_id)
            b = accounts.balances(conn, partner_id)
    except _BadField as e:
        return _refused(partner_id, e, form)
    if request.form.get("confirmed") != "yes":
        return render_template("channels/accounts/confirm.html", p=p, b=b, action=action,
                               amount=amount, reference=reference)
    try:
        with engine().begin() as conn:
            result = work(conn, amount, reference)
    except HubError as e:
        return _refused(partner_id, e, form)
    if result["replayed"]:
        refused(_("The reference %(reference)s was entered before: nothing more was posted.",
                  reference=reference))
        return _partner_page(partner_id, {"reference": _("Entered before.")}, 409, form)
    ok(done(amount, reference))
    return back("channel_accounts.partner", partner_id=partner_id)


@bp.post("/<int:partner_id>/top-up")
@permission(MONEY)
def top_up(partner_id: int):
    return _money_form(
        partner_id, "top_up",
        lambda conn, amount, ref: accounts.top_up(conn, partner_id, amount, CURRENCY, ref,
                                                  actor(), utcnow()),
        lambda amount, ref: _("%(amount)s is on the prepaid balance (bank reference "
                              "%(reference)s).", amount=money(amount, CURRENCY),
                              reference=ref))


@bp.post("/<int:partner_id>/repay")
@permission(MONEY)
def repay(partner_id: int):
    return _money_form(
        partner_id, "repay",
        lambda conn, amount, ref: accounts.repay_credit(conn, partner_id, amount, ref,
                                                        actor(), utcnow()),
        lambda amount, ref: _("%(amount)s of credit is repaid (bank reference %(reference)s).",
                              amount=money(amount, CURRENCY), reference=ref))


def _setting(partner_id: int, name: str, change, done: str):
    form = {name: request.form.get(name, "")[:20]}
    try:
        value = _yuan_field(name, zero=True)
        with engine().begin() as conn:
            _partner_or_404(conn, partner_id)
            change(conn, value)
    except (_BadField, HubError) as e:
        return _refused(partner_id, e, form)
    ok(done)
    return back("channel_accounts.partner", partner_id=partner_id)


@bp.post("/<int:partner_id>/credit-limit")
@permission(MANAGE)
def credit_limit(partner_id: int):
    return _setting(partner_id, "limit", lambda conn, value: accounts.set_credit_limit(
        conn, partner_id, value, actor(), utcnow()), _("The credit limit is saved."))


@bp.post("/<int:partner_id>/warn-below")
@permission(MANAGE)
def warn_below(partner_id: int):
    return _setting(partner_id, "warn_below", lambda conn, value: accounts.set_warn_below(
        conn, partner_id, value, actor(), utcnow()), _("The warning threshold is saved."))


# -- the credit statement --------------------------------------------------------------------


def _this_month() -> str:
    return utcnow().astimezone(CHINA).strftime("%Y-%m")


def month_arg() -> str:
    """``?month=YYYY-MM`` (China time), this month when absent; 400 naming it otherwise."""
    raw = request.args.get("month", "").strip()
    if not raw:
        return _this_month()
    if not _MONTH.fullmatch(raw):
        raise BadArgument(_("The address asks for month=%(value)s: a month as YYYY-MM is "
                            "expected.", value=raw[:40]))
    return raw


@bp.get("/<int:partner_id>/statement")
@permission(VIEW)
def statement(partner_id: int):
    month = month_arg()
    with engine().connect() as conn:
        p = _partner_or_404(conn, partner_id)
        s = accounts.credit_statement(conn, partner_id, month)
    return render_template("channels/accounts/statement.html", p=p, s=s)


def statement_csv(s: dict, code: str) -> Response:
    """The month's credit statement as CSV (amounts in yuan, times China time)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["month", "at", "kind", "order_id", "reference", "charged", "repaid"])
    writer.writerow([s["month"], "", "opening", "", "", yuan_text(s["opening"]), ""])
    for x in s["lines"]:
        writer.writerow([s["month"], x["at"].astimezone(CHINA).isoformat(), x["kind"],
                         x["order_id"] or "", x["reference"] or "", yuan_text(x["charged"]),
                         yuan_text(x["repaid"])])
    writer.writerow([s["month"], "", "closing", "", "", yuan_text(s["closing"]), ""])
    return Response(out.getvalue().encode("utf-8"), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="credit-{code}-{s["month"]}.csv"'})


@bp.get("/<int:partner_id>/statement.csv")
@permission(VIEW)
def statement_download(partner_id: int):
    month = month_arg()
    with engine().connect() as conn:
        p = _partner_or_404(conn, partner_id)
        s = accounts.credit_statement(conn, partner_id, month)
    return statement_csv(s, p.code)


# -- webhooks --------------------------------------------------------------------------------


@bp.post("/<int:partner_id>/webhooks")
@permission(MANAGE)
def register_webhook(partner_id: int):
    form = {"url": request.form.get("url", "")[:300],
            "events": request.form.getlist("events")}
    try:
        with engine().begin() as conn:
            p = _partner_or_404(conn, partner_id)
            made = webhooks.register_webhook(conn, partner_id, form["url"].strip(),
                                             form["events"], actor(), utcnow())
    except HubError as e:
        return _refused(partner_id, e, form)
    return render_template("channels/accounts/webhook_secret.html", p=p, hook=made)


def _own_hook(conn, partner_id: int, webhook_id: int) -> dict:
    found = [h for h in webhooks.webhooks_of(conn, partner_id) if h["id"] == webhook_id]
    if not found:
        abort(404)
    return found[0]


@bp.get("/<int:partner_id>/webhooks/<int:webhook_id>/disable")
@permission(MANAGE)
def confirm_disable(partner_id: int, webhook_id: int):
    with engine().connect() as conn:
        p = _partner_or_404(conn, partner_id)
        hook = _own_hook(conn, partner_id, webhook_id)
    return render_template("channels/accounts/webhook_disable.html", p=p, hook=hook)


@bp.post("/<int:partner_id>/webhooks/<int:webhook_id>/disable")
@permission(MANAGE)
def disable_webhook(partner_id: int, webhook_id: int):
    with engine().begin() as conn:
        _partner_or_404(conn, partner_id)
        hook = _own_hook(conn, partner_id, webhook_id)
        if hook["state"] == "active":  # a second submit changes (and audits) nothing more
            webhooks.disable_webhook(conn, partner_id, webhook_id, actor(), utcnow())
    ok(_("The webhook to %(url)s is disabled: it is told nothing more.", url=hook["url"]))
    return back("channel_accounts.partner", partner_id=partner_id)
