"""The finance pages' settlements (``/finance/settlements``, ``/finance/statements``): the
runs and a new one, a run's statements, a statement with its lines and its files (CSV, PDF),
marking it paid and cancelling it, each confirmed on a page of its own first.

Running a settlement and cancelling a statement need ``finance.manage``; marking a statement
paid ``finance.pay``, and never by whoever prepared it (cloud/ledger/settlement.py refuses
it: maker ≠ checker). The run is the area's ``run_settlement``: each partner in its own
transaction, a stopped run finished by running it again.
"""

from __future__ import annotations

from flask import Response, abort, render_template
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.ledger import settlement, statement_files
from cloud.ledger.errors import LedgerError
from cloud.ledger.pages import (
    MANAGE,
    PAY,
    VIEW,
    BadForm,
    bp,
    refusal,
    text_field,
    time_field,
)
from cloud.ledger.tables import STATEMENT_STATES
from cloud.web.pages import chosen_language
from cloud.web.query import query_choice, query_int
from cloud.web.web import actor, back, can, ok, permission, refused
from cloud.web.web import engine as db
from sync.timeutil import utcnow


def run_state_words(state: str) -> str:
    return {"running": _("running (stopped: run it again to finish)"),
            "done": _("done")}.get(state, state)


@bp.context_processor
def _words() -> dict:
    return {"run_state_words": run_state_words}


def _statement_or_404(conn, statement_id: int):
    try:
        return settlement.statement(conn, statement_id)
    except LedgerError:
        abort(404)


# -- runs -------------------------------------------------------------------------------------------


def _runs_page(error: str = "", status: int = 200):
    with db().connect() as conn:
        rows = settlement.runs(conn)
    return render_template("ledger/runs.html", rows=rows, error=error), status


@bp.get("/settlements")
@permission(VIEW)
def runs():
    return _runs_page()


@bp.post("/settlements")
@permission(MANAGE)
def start_run():
    """A run as of the time given (empty: now), carried out at once."""
    try:
        now = utcnow()
        as_of = min(time_field("as_of", default_now=True), now)  # now's minute: now
        run_id = settlement.run_settlement(db(), as_of, actor(), now)
    except (HubError, BadForm) as e:
        return _runs_page(refusal(e), 422)
    ok(_("Settlement run %(id)s is done: each partner with lines due has a statement to "
         "check and pay.", id=run_id))
    return back("finance.run", run_id=run_id)


@bp.post("/settlements/<int:run_id>/resume")
@permission(MANAGE)
def resume_run(run_id: int):
    try:
        settlement.resume_run(db(), run_id, utcnow())
    except HubError as e:
        refused(refusal(e))
    else:
        ok(_("Settlement run %(id)s is done.", id=run_id))
    return back("finance.run", run_id=run_id)


@bp.get("/settlements/<int:run_id>")
@permission(VIEW)
def run(run_id: int):
    with db().connect() as conn:
        row = next((r for r in settlement.runs(conn) if r.id == run_id), None)
        if row is None:
            abort(404)
        rows = settlement.statements(conn, run_id=run_id)
    return render_template("ledger/run.html", r=row, statements=rows)


# -- statements -------------------------------------------------------------------------------------


@bp.get("/statements")
@permission(VIEW)
def statements():
    state = query_choice("state", STATEMENT_STATES, "")
    partner_id = query_int("partner")
    with db().connect() as conn:
        rows = settlement.statements(conn, partner_id=partner_id)
    if state:
        rows = [r for r in rows if r.state == state]
    return render_template("ledger/statements.html", statements=rows, state=state,
                           states=STATEMENT_STATES)


@bp.get("/statements/<int:statement_id>")
@permission(VIEW)
def statement(statement_id: int):
    with db().connect() as conn:
        row = _statement_or_404(conn, statement_id)
        lines = settlement.statement_lines(conn, statement_id)
    return render_template("ledger/statement.html", s=row, lines=lines, me=actor(),
                           may_pay=can(PAY), may_cancel=can(MANAGE))


@bp.get("/statements/<int:statement_id>.<any(csv, pdf):fmt>")
@permission(VIEW)
def statement_file(statement_id: int, fmt: str):
    with db().connect() as conn:
        row = _statement_or_404(conn, statement_id)
        data = (statement_files.statement_csv(conn, statement_id) if fmt == "csv"
                else statement_files.statement_pdf(conn, statement_id, chosen_language()))
    name = f"statement-{row.partner_code}-{statement_id}.{fmt}"
    return Response(data, mimetype="text/csv" if fmt == "csv" else "application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _confirm(statement_id: int, action: str):
    with db().connect() as conn:
        row = _statement_or_404(conn, statement_id)
    if row.state != "prepared":
        refused(refusal(LedgerError("statement_state", statement_id=statement_id,
                                    state=row.state)))
        return back("finance.statement", statement_id=statement_id)
    return render_template("ledger/statement_confirm.html", s=row, action=action)


@bp.get("/statements/<int:statement_id>/confirm-pay")
@permission(PAY)
def confirm_pay(statement_id: int):
    return _confirm(statement_id, "pay")


@bp.get("/statements/<int:statement_id>/confirm-cancel")
@permission(MANAGE)
def confirm_cancel(statement_id: int):
    return _confirm(statement_id, "cancel")


def _act(statement_id: int, done: str, step):
    try:
        with db().begin() as conn:
            _statement_or_404(conn, statement_id)
            step(conn)
    except (HubError, BadForm) as e:
        refused(refusal(e))
    else:
        ok(done)
    return back("finance.statement", statement_id=statement_id)


@bp.post("/statements/<int:statement_id>/pay")
@permission(PAY)
def pay(statement_id: int):
    return _act(statement_id, _("The statement is marked paid: its payout is posted."),
                lambda conn: settlement.mark_paid(conn, statement_id,
                                                  text_field("reference", 64), actor(),
                                                  utcnow()))


@bp.post("/statements/<int:statement_id>/cancel")
@permission(MANAGE)
def cancel(statement_id: int):
    return _act(statement_id, _("The statement is cancelled: its payout is voided and its "
                                "lines are due again in the next run."),
                lambda conn: settlement.cancel_statement(conn, statement_id, actor(),
                                                         utcnow()))
