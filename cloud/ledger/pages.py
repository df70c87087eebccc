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

from flask import abort, render_template
from flask_babel import gettext as _

from cloud.ledger import journal, reads
from cloud.ledger.tables import ENTRY_STATES
from cloud.web.query import query_choice, query_int, query_text
from cloud.web.web import engine, page_blueprint, permission

bp = page_blueprint("finance", url_prefix="/finance")
VIEW = "finance.view"
MANAGE = "finance.manage"
PAY = "finance.pay"
ZONE = "Asia/Shanghai"


@bp.context_processor
def _helpers() -> dict:
    return {"zone": ZONE, "account_kind_words": account_kind_words,
            "entry_state_words": entry_state_words, "part_words": part_words,
            "entry_kind_words": entry_kind_words, "channel_words": channel_words, "VIEW": VIEW, "MANAGE": MANAGE, "PAY": PAY}


def account_kind_words(kind: str) -> str:
    return {"asset": _("asset"), "liability": _("liability"), "revenue": _("revenue"),
            "expense": _("expense")}.get(kind, kind)


def entry_state_words(state: str) -> str:
    return {"pending": _("pending"), "posted": _("posted"),
            "voided": _("voided")}.get(state, state)


def entry_kind_words(kind: str) -> str:
    return {"payment": _("payment"), "unplaced": _("payment no order kept"),
            "refund": _("refund"), "payout": _("payout"), "reversal": _("reversal"),
            "adjustment": _("reconciliation adjustment")}.get(kind, kind)


def channel_words(channel: str | None) -> str:
    """Where an order was sold (cloud/ledger/posting.py ``channel_of``)."""
    if not channel:
        return "—"
    return {"web": _("public site"), "presale": _("presale"),
            "box_office": _("box office")}.get(channel, channel)


def part_words(part: str) -> str:
    return {"organiser": _("organiser"), "venue": _("venue"), "distributor": _("distributor"),
            "agent": _("agent"), "platform": _("platform fee"),
            "provider_fee": _("payment fee"), "clearing": _("clearing"),
            "refunds_payable": _("buyers' refunds payable"), "payout": _("payout"),
            "bank": _("bank"), "adjustment": _("adjustment"),
            "suspense": _("suspense")}.get(part, part)


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
        return _("Clearing at %(provider)s", provider=rest)
    if head == "provider_fees":
        return _("Fees kept by %(provider)s", provider=rest)
    if head == "partner":
        partner = name.rsplit(":", 1)[0]
        return (_("%(partner)s: payable", partner=partner) if code.endswith(":payable")
                else _("%(partner)s: receivable", partner=partner))
    return name


bp.add_app_template_global(account_name, "ledger_account_name")


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
