"""The finance pages (``/finance``): the trial balance with every account's balance, an
account's history, the journal's entries and an entry with its postings. The partners,
split rules, settlements, reconciliation and cost pages are in the other ``*_pages`` modules
of this area, on this blueprint.

Seeing needs ``finance.view``; changing partners, rules, settlements and reconciliation
needs ``finance.manage``; marking a statement paid ``finance.pay``. The ledger's rules and
their audit are the area's (cloud/ledger/); these views read forms and show refusals in the
page's language. Amounts are shown in yuan with their currency; times in China time.
"""

from __future__ import annotations

import re
from datetime import datetime

from flask import abort, render_template, request
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.ledger import journal, reads
from cloud.ledger.tables import ENTRY_STATES
from cloud.web.query import query_choice, query_int, query_text
from cloud.web.web import engine, page_blueprint, parse_local, permission
from cloud.web.words import rule_error
from sync.timeutil import utcnow
from sync.websafe import whole_number

bp = page_blueprint("finance", url_prefix="/finance")
VIEW = "finance.view"
MANAGE = "finance.manage"
PAY = "finance.pay"
ZONE = "Asia/Shanghai"


@bp.context_processor
def _helpers() -> dict:
    return {"zone": ZONE, "account_kind_words": account_kind_words,
            "entry_state_words": entry_state_words, "part_words": part_words,
            "entry_kind_words": entry_kind_words, "channel_words": channel_words,
            "statement_state_words": statement_state_words, "provider_words": provider_words,
            "VIEW": VIEW, "MANAGE": MANAGE, "PAY": PAY}


def account_kind_words(kind: str) -> str:
    return {"asset": _("asset"), "liability": _("liability"), "revenue": _("revenue"),
            "expense": _("expense")}.get(kind, kind)


def entry_state_words(state: str) -> str:
    return {"pending": _("pending"), "posted": _("posted"),
            "voided": _("voided")}.get(state, state)


def entry_kind_words(kind: str) -> str:
    return {"payment": _("payment"), "unplaced": _("payment no order kept"),
            "refund": _("refund"), "payout": _("payout"), "reversal": _("reversal"),
            "adjustment": _("reconciliation adjustment"),
            # partners' accounts (issue 20)
            "topup": _("top-up"), "credit_limit": _("credit limit changed"),
            "credit_repayment": _("credit repaid"), "account_payment": _("order paid"),
            "account_refund": _("order refunded")}.get(kind, kind)


def provider_words(provider: str | None) -> str:
    """A payment provider by the name people know it by."""
    if not provider:
        return "—"
    return {"wechat": _("WeChat Pay"), "alipay": _("Alipay"),
            "offline": _("cash and card at the booth"),
            "account": _("the partner's account"),
            "transfer": _("bank transfer")}.get(provider, provider)


def statement_state_words(state: str) -> str:
    return {"prepared": _("prepared, not paid yet"), "paid": _("paid"),
            "cancelled": _("cancelled")}.get(state, state)


def channel_words(channel: str | None) -> str:
    """Where an order was sold (cloud/ledger/posting.py ``channel_of``)."""
    if not channel:
        return "—"
    return {"web": _("public site"), "presale": _("presale"),
            "box_office": _("box office"), "kiosk": _("kiosk"),
            "contract": _("contract customer"), "distributor": _("distributor"),
            "agent": _("agent"), "topup": _("partner's online top-up")}.get(channel, channel)


def part_words(part: str) -> str:
    return {"organiser": _("organiser"), "venue": _("venue"), "distributor": _("distributor"),
            "agent": _("agent"), "platform": _("platform fee"),
            "provider_fee": _("payment fee"), "clearing": _("clearing"),
            "refunds_payable": _("buyers' refunds payable"), "payout": _("payout"),
            "bank": _("bank"), "adjustment": _("adjustment"),
            "suspense": _("suspense"), "prepaid": _("prepaid balance"),
            "credit": _("unused credit"), "limit": _("credit limit"),
            "repayment": _("repayment")}.get(part, part)


def account_name(row) -> str:
    """An account's name in the page's language, from its code (the chart's names are
    English in the row; a partner's account is named after the partner)."""
    values = row if isinstance(row, dict) else row._mapping
    code, name = values["code"], values["name"]
    fixed = {"platform:revenue": _("Platform revenue"),
             "refunds_payable": _("Buyers' refunds payable"),
             "undistributed": _("Undistributed (no organiser rule)"),
             "bank": _("Platform bank account"), "suspense": _("Reconciliation suspense")}
    if code in fixed:
        return fixed[code]
    head, _sep, rest = code.partition(":")
    if head == "clearing":
        return _("Clearing at %(provider)s", provider=provider_words(rest))
    if head == "provider_fees":
        return _("Fees kept by %(provider)s", provider=provider_words(rest))
    if head == "partner":
        partner = name.rsplit(":", 1)[0]
        kind = code.rsplit(":", 1)[-1]
        words = {"payable": _("%(partner)s: payable", partner=partner),
                 "prepaid": _("%(partner)s: prepaid balance", partner=partner),
                 "credit_line": _("%(partner)s: unused credit", partner=partner),
                 "credit_granted": _("%(partner)s: credit granted", partner=partner)}
        return words.get(kind, _("%(partner)s: receivable", partner=partner))
    return name


bp.add_app_template_global(account_name, "ledger_account_name")


# -- the forms' fields ---------------------------------------------------------------------------

MAX_ID = 2**31 - 1
_YUAN = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")
_PERCENT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,2})?")


class BadForm(ValueError):
    """A form field the page cannot read; its words name the field."""


def field_words(field: str) -> str:
    """A form field's label, for a refusal that names it (a rule's ``field``)."""
    return {"code": _("Code"), "name": _("Name"), "kind": _("Kind"),
            "settle_days": _("Settlement cycle (days)"), "state": _("State"),
            "username": _("User name"), "display_name": _("Display name"),
            "password": _("Password"), "part": _("Part"), "partner_id": _("Partner"),
            "basis_points": _("Percentage"), "fixed_per_ticket": _("Fixed amount per ticket"),
            "percent": _("Percentage"), "fixed": _("Fixed amount per ticket"),
            "effective_from": _("In force from"), "effective_until": _("In force until"),
            "event_id": _("Event"), "product_id": _("Product"), "channel": _("Channel"),
            "provider": _("Payment provider"), "as_of": _("Settle up to"),
            "run_id": _("Run"), "reference": _("Bank reference"), "note": _("Note"),
            "action": _("Action"), "day": _("Day"), "since": _("From"),
            "until": _("Until")}.get(field, field)


def bad(field: str, words: str) -> BadForm:
    return BadForm(_("%(field)s: %(problem)s", field=field_words(field), problem=words))


def refusal(e: Exception) -> str:
    """A refusal in the page's words, the field it names by its label."""
    if isinstance(e, HubError) and e.code == "bad_ledger_request":  # the form's label
        return _("%(field)s is missing or not valid.",
                 field=field_words(str(e.params.get("field"))))
    if isinstance(e, HubError) and "field" in e.params:
        return rule_error(e, field=field_words(str(e.params["field"])))
    if isinstance(e, HubError) and e.code == "statement_state":
        return rule_error(e, state=statement_state_words(str(e.params["state"])))
    return rule_error(e)


def text_field(name: str, limit: int, *, optional: bool = False,
               lines: bool = False) -> str | None:
    """A form's text, printable; with ``lines``, its line breaks become spaces (a note)."""
    value = request.form.get(name, "")
    if lines:
        value = " ".join(value.split())
    value = value.strip()
    if not value:
        if optional:
            return None
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


def choice_field(name: str, choices: tuple[str, ...], *, optional: bool = False) -> str | None:
    value = request.form.get(name, "").strip()
    if not value and optional:
        return None
    if value not in choices:
        raise bad(name, _("choose from the list."))
    return value


def yuan_field(name: str) -> int:
    """An amount typed in yuan (``12.50``), as fen; empty is zero."""
    raw = request.form.get(name, "").strip() or "0"
    if not _YUAN.fullmatch(raw):
        raise bad(name, _("give an amount in yuan, such as 12.50."))
    whole, _sep, cents = raw.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def percent_field(name: str) -> int:
    """A percentage typed with up to two decimals (``5.5``), as basis points; empty is
    zero."""
    raw = request.form.get(name, "").strip() or "0"
    if not _PERCENT.fullmatch(raw):
        raise bad(name, _("give a percentage from 0 to 100, such as 5.5."))
    whole, _sep, cents = raw.partition(".")
    value = int(whole) * 100 + int((cents + "00")[:2])
    if value > 10_000:
        raise bad(name, _("give a percentage from 0 to 100, such as 5.5."))
    return value


def time_field(name: str, *, default_now: bool = False) -> datetime:
    """A China-time moment from a ``datetime-local`` field (empty: now, when allowed)."""
    raw = request.form.get(name, "").strip()
    if not raw and default_now:
        return utcnow()
    try:
        if len(raw) > 32:
            raise ValueError(raw)
        return parse_local(raw, ZONE)
    except (ValueError, OverflowError):  # OverflowError: the year 1 in China is before UTC's
        raise bad(name, _("give a date and time.")) from None


# -- the journal ----------------------------------------------------------------------------------


@bp.get("/")
@permission(VIEW)
def index():
    """The trial balance: every account's balance, the totals by kind, and the sum of every
    posted posting per currency, which is zero."""
    with engine().connect() as conn:
        rows = reads.account_list(conn)
        totals = journal.trial_balance(conn)
    by_kind: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["kind"], r["currency"])
        by_kind[key] = by_kind.get(key, 0) + r["balance"]
    return render_template("ledger/index.html", rows=rows, totals=totals, by_kind=by_kind)


@bp.get("/accounts/<int:account_id>")
@permission(VIEW)
def account(account_id: int):
    before = query_int("before")
    with engine().connect() as conn:
        row = reads.account(conn, account_id)
        if row is None:
            abort(404)
        history = reads.account_history(conn, account_id, before=before)
    sign = 1 if row["kind"] in ("asset", "expense") else -1
    return render_template("ledger/account.html", a=row, history=history, sign=sign,
                           before=before, more=len(history) == reads.PAGE)


@bp.get("/entries")
@permission(VIEW)
def entries():
    kind = query_text("kind", 20)
    state = query_choice("state", ENTRY_STATES, "")
    before = query_int("before")
    with engine().connect() as conn:
        rows = reads.entry_list(conn, kind=kind or None, state=state or None, before=before)
        kinds = reads.entry_kinds(conn)
    return render_template("ledger/entries.html", rows=rows, kinds=kinds, kind=kind,
                           state=state, states=ENTRY_STATES, before=before,
                           more=len(rows) == reads.PAGE)


@bp.get("/entries/<int:entry_id>")
@permission(VIEW)
def entry(entry_id: int):
    with engine().connect() as conn:
        row = reads.entry(conn, entry_id)
        if row is None:
            abort(404)
        legs = reads.postings_of(conn, [entry_id])[entry_id]
        reversed_by = reads.entry(conn, row.reverses) if row.reverses else None
    return render_template("ledger/entry.html", e=row, legs=legs, reverses=reversed_by)
