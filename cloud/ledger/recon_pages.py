"""The finance pages' reconciliation (``/finance/reconciliation``): the exceptions the
providers' daily statements raised against the ledger, each resolved (accepted, adjusted by
an entry against suspense, or marked for follow-up) after a confirmation page; the statements
imported and a form to import a provider's statement of a day; and the reports: the ticket
library against the ledger per session and channel, and the costs of sales per event and
channel.

Seeing needs ``finance.view``; importing and resolving ``finance.manage``. A statement is
fetched by the payments area (it knows the providers): the app hands this page its import as
``app.extensions["ledger_statement_import"]`` (cloud/app.py), a function of the provider's
name, the day, the actor and now, and the providers that give statements as
``app.extensions["ledger_statement_providers"]()``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import abort, current_app, render_template, request
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.ledger import library, reconciliation
from cloud.ledger.errors import LedgerError
from cloud.ledger.pages import (
    MANAGE,
    VIEW,
    BadForm,
    bad,
    bp,
    choice_field,
    field_words,
    refusal,
    text_field,
)
from cloud.ledger.tables import EXCEPTION_KINDS, EXCEPTION_STATES
from cloud.web.query import BadArgument, query_choice
from cloud.web.web import actor, back, ok, permission, refused
from cloud.web.web import engine as db
from sync.timeutil import utcnow

IMPORT = "ledger_statement_import"
PROVIDERS = "ledger_statement_providers"
CHINA = reconciliation.CHINA
MAX_DAYS = 92  # a report's longest period


def exception_kind_words(kind: str) -> str:
    return {"missing_in_ledger": _("in the statement, not in the ledger (a missing callback)"),
            "missing_from_statement": _("in the ledger, not in the statement"),
            "amount_differs": _("amounts differ"),
            "unknown_refund": _("a refund the hub never asked for"),
            "duplicate": _("listed twice in the statement")}.get(kind, kind)


def exception_state_words(state: str) -> str:
    return {"open": _("open"), "accepted": _("accepted"), "adjusted": _("adjusted"),
            "follow_up": _("to follow up")}.get(state, state)


def action_words(action: str) -> str:
    return {"accept": _("Accept as it is"), "adjust": _("Post an adjustment"),
            "follow_up": _("Mark for follow-up")}.get(action, action)


@bp.context_processor
def _words() -> dict:
    return {"exception_kind_words": exception_kind_words,
            "exception_state_words": exception_state_words, "action_words": action_words,
            "difference": reconciliation.difference}


def _providers() -> list[str]:
    return sorted(current_app.extensions[PROVIDERS]())


# -- exceptions and imports ---------------------------------------------------------------------


def _recon_page(form: dict, error: str = "", status: int = 200):
    state = query_choice("state", EXCEPTION_STATES, "")
    kind = query_choice("kind", EXCEPTION_KINDS, "")
    with db().connect() as conn:
        rows = reconciliation.exceptions(conn, state=state or None)
        done = reconciliation.imports(conn)[:30]
    if kind:
        rows = [r for r in rows if r.kind == kind]
    return render_template("ledger/reconciliation.html", rows=rows, imports=done,
                           state=state, kind=kind, states=EXCEPTION_STATES,
                           kinds=EXCEPTION_KINDS, providers=_providers(), form=form,
                           error=error), status


@bp.get("/reconciliation")
@permission(VIEW)
def reconciliation_page():
    yesterday = (utcnow().astimezone(CHINA).date() - timedelta(days=1)).isoformat()
    return _recon_page({"day": yesterday})


def _day_field(name: str) -> date:
    raw = request.form.get(name, "").strip()
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise bad(name, _("give a date such as 2027-08-01.")) from None


@bp.post("/reconciliation/import")
@permission(MANAGE)
def import_statement():
    form = request.form.to_dict()
    try:
        provider = choice_field("provider", tuple(_providers()))
        day = _day_field("day")
        if day >= utcnow().astimezone(CHINA).date():
            raise bad("day", _("a provider's statement of a day is ready the day after."))
        imported = current_app.extensions[IMPORT](provider, day, actor(), utcnow())
    except (HubError, BadForm) as e:
        return _recon_page(form, refusal(e), 422)
    ok(_("The statement of %(day)s is imported: %(rows)s rows, %(n)s new exceptions.",
         day=day.isoformat(), rows=imported.rows, n=len(imported.exceptions)))
    return back("finance.reconciliation_page")


def _exception_or_404(conn, exception_id: int):
    try:
        return reconciliation.exception(conn, exception_id)
    except LedgerError:
        abort(404)


@bp.get("/reconciliation/<int:exception_id>/confirm/<any(accept, adjust, follow_up):action>")
@permission(MANAGE)
def confirm_resolve(exception_id: int, action: str):
    with db().connect() as conn:
        row = _exception_or_404(conn, exception_id)
    if row.state not in reconciliation.OPEN_STATES:
        refused(refusal(LedgerError("exception_resolved", exception_id=exception_id,
                                    state=exception_state_words(row.state))))
        return back("finance.reconciliation_page")
    return render_template("ledger/exception_confirm.html", x=row, action=action)


@bp.post("/reconciliation/<int:exception_id>/resolve")
@permission(MANAGE)
def resolve(exception_id: int):
    try:
        action = choice_field("action", tuple(reconciliation.ACTIONS))
        note = text_field("note", 500, optional=True, lines=True) or ""
        with db().begin() as conn:
            _exception_or_404(conn, exception_id)
            reconciliation.resolve(conn, exception_id, action, note, actor(), utcnow())
    except LedgerError as e:
        if e.code == "exception_resolved":
            refused(refusal(LedgerError("exception_resolved", exception_id=exception_id,
                                        state=exception_state_words(e.params["state"]))))
        elif e.code == "bad_ledger_request" and e.params.get("field") == "action":
            refused(_("There is no difference to adjust: accept the exception instead."))
        else:
            refused(refusal(e))
    except (HubError, BadForm) as e:
        refused(refusal(e))
    else:
        ok(_("Exception %(id)s: %(action)s, done.", id=exception_id,
             action=action_words(action)))
    return back("finance.reconciliation_page")


# -- reports ----------------------------------------------------------------------------------------


def _period() -> tuple[date, date, datetime, datetime]:
    """``?since=`` and ``?until=`` as China days (default: the last seven days up to today),
    as UTC moments from the first day's midnight to the day after the last one's."""
    today = utcnow().astimezone(CHINA).date()
    days = []
    for name, default in (("since", today - timedelta(days=6)), ("until", today)):
        raw = request.args.get(name, "").strip()
        try:
            days.append(date.fromisoformat(raw) if raw else default)
            if len(raw) not in (0, 10):
                raise ValueError(raw)
        except ValueError:
            raise BadArgument(_("The address gives %(field)s as %(value)s: a date "
                                "(2027-08-01) is expected.", field=field_words(name),
                                value=raw[:40])) from None
    since, until = days
    if until < since or (until - since).days >= MAX_DAYS:
        raise BadArgument(_("The period runs from since to until, at most %(n)s days.",
                            n=MAX_DAYS))
    start = datetime.combine(since, time(0), CHINA)
    end = datetime.combine(until + timedelta(days=1), time(0), CHINA)
    return since, until, start, end


@bp.get("/library")
@permission(VIEW)
def ticket_library():
    since, until, start, end = _period()
    with db().connect() as conn:
        rows = library.ticket_library(conn, start, end)
    return render_template("ledger/library.html", rows=rows, since=since, until=until)


@bp.get("/costs")
@permission(VIEW)
def costs():
    since, until, start, end = _period()
    with db().connect() as conn:
        rows = library.costs(conn, start, end)
    return render_template("ledger/costs.html", rows=rows, since=since, until=until)
