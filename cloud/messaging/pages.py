"""The messaging pages (``messages.manage``): the outbox with filters and a message's resend
(after a confirmation), the templates with their preview, and the send tasks with their
progress. The rules are the area's modules; these views only translate."""

from __future__ import annotations

from flask import abort, current_app, render_template, request
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.core.outbox import CHANNELS, LANGUAGES, STATES
from cloud.messaging import audiences, messages, tasks, templates
from cloud.messaging.errors import MessagingError
from cloud.messaging.rendering import KINDS, PARAMS
from cloud.web.query import query_choice, query_int
from cloud.web.web import actor, back, engine, ok, page_blueprint, permission, refused
from cloud.web.words import rule_error

bp = page_blueprint("messages", url_prefix="/messages")


@bp.app_template_filter("tpl_name")
def tpl_name(name: str) -> str:
    """A template's parameter as a template names it: ``{{ order }}`` (what staff type, in any
    language of the page)."""
    return "{{ " + name + " }}"
MANAGE = "messages.manage"


@bp.get("/")
@permission(MANAGE)
def index():
    state = query_choice("state", STATES, "")
    channel = query_choice("channel", CHANNELS, "")
    kind = query_choice("kind", KINDS, "")
    task = query_int("task")
    before = query_int("before")
    with engine().connect() as conn:
        rows = messages.list_messages(conn, state=state or None, channel=channel or None,
                                      kind=kind or None, task_id=task, before=before)
        counts = messages.counts(conn)
    return render_template("messaging/outbox.html", rows=rows, counts=counts, state=state,
                           channel=channel, kind=kind, task=task, STATES=STATES,
                           CHANNELS=CHANNELS, KINDS=KINDS, page=messages.PAGE)


@bp.get("/<int:message_id>/resend")
@permission(MANAGE)
def confirm_resend(message_id: int):
    with engine().connect() as conn:
        found = messages.list_messages(conn, before=message_id + 1, limit=1)
    if not found or found[0].id != message_id:
        abort(404)
    return render_template("messaging/resend.html", m=found[0])


@bp.post("/<int:message_id>/resend")
@permission(MANAGE)
def resend(message_id: int):
    try:
        with engine().begin() as conn:
            messages.resend(conn, message_id, actor())
    except HubError as e:
        refused(rule_error(e))
        return back("messages.index")
    ok(_("Message %(id)s will be sent again.", id=message_id))
    return back("messages.index")


@bp.get("/templates")
@permission(MANAGE)
def template_list():
    with engine().connect() as conn:
        found = templates.all_templates(conn)
    return render_template("messaging/templates.html", templates=found, PARAMS=PARAMS)


def _kind_language(kind: str, language: str) -> None:
    if kind not in KINDS or language not in LANGUAGES:
        abort(404)


@bp.route("/templates/<kind>/<language>", methods=["GET", "POST"])
@permission(MANAGE)
def template_edit(kind: str, language: str):
    _kind_language(kind, language)
    with engine().connect() as conn:
        subject, body, edited = templates.template(conn, kind, language)
    shown, error = None, None
    if request.method == "POST":
        subject = request.form.get("subject", "")
        body = request.form.get("body", "")
        try:
            if request.form.get("action") == "save":
                with engine().begin() as conn:
                    templates.save_template(conn, kind, language, subject, body, actor())
                ok(_("The template is saved."))
                return back("messages.template_list")
            if request.form.get("action") == "reset":
                with engine().begin() as conn:
                    templates.reset_template(conn, kind, language, actor())
                ok(_("The template is back to the built-in words."))
                return back("messages.template_list")
            shown = templates.preview(kind, subject, body)
        except HubError as e:
            error = rule_error(e)
    return render_template("messaging/template.html", kind=kind, language=language,
                           subject=subject, body=body, edited=edited, shown=shown, error=error,
                           params=PARAMS[kind]), 422 if error else 200


@bp.get("/tasks")
@permission(MANAGE)
def task_list():
    with engine().connect() as conn:
        found = tasks.tasks_progress(conn)
    return render_template("messaging/tasks.html", tasks=found)


def _audiences() -> audiences.Audiences:
    return current_app.extensions.get("message_audiences") or audiences.Audiences()


def _create_task(kind: str, form: dict[str, str], offered: audiences.Audiences) -> int:
    """The task the form asks for: to the typed list, or to the holders of a session."""
    values = {"kind": kind, "channel": form["channel"],
              "language": form["language"] if form["language"] in LANGUAGES else "zh",
              "params": {p: form.get(f"param_{p}", "") for p in PARAMS[kind]},
              "title": form["title"], "actor": actor()}
    with engine().begin() as conn:
        if form["audience"] == audiences.SESSION_HOLDERS:
            return audiences.audience_task(conn, offered, audiences.SESSION_HOLDERS,
                                           _session_id(form.get("session_id", "")), **values)
        recipients = form["recipients"].replace(",", "\n").splitlines()
        return tasks.create_task(conn, recipients=recipients, **values)


def _session_id(value: str) -> int:
    if not value.strip().isdigit() or len(value.strip()) > 9:
        raise MessagingError("unknown_session", session_id=value.strip()[:20] or "-")
    return int(value)


@bp.route("/tasks/new", methods=["GET", "POST"])
@permission(MANAGE)
def task_new():
    kind = request.values.get("kind", "session_changed")
    if kind not in KINDS:
        abort(404)
    offered = _audiences()
    form = {"channel": "sms", "language": "zh", "title": "", "recipients": "",
            "audience": "list", "session_id": "", **request.form.to_dict()}
    status = 200
    if request.method == "POST":
        try:
            task_id = _create_task(kind, form, offered)
        except HubError as e:
            refused(rule_error(e))
            status = 422
        else:
            ok(_("The messages are on their way."))
            return back("messages.task_detail", task_id=task_id)
    choices = []
    if offered.offers(audiences.SESSION_HOLDERS):
        with engine().connect() as conn:
            choices = audiences.session_choices(conn)
    return render_template("messaging/task_new.html", kind=kind, form=form,
                           params=PARAMS[kind], KINDS=KINDS, CHANNELS=CHANNELS,
                           sessions=choices), status


@bp.get("/tasks/<int:task_id>")
@permission(MANAGE)
def task_detail(task_id: int):
    with engine().connect() as conn:
        progress = tasks.task_progress(conn, task_id)
        if progress is None:
            abort(404)
        rows = messages.list_messages(conn, task_id=task_id)
    return render_template("messaging/task.html", t=progress, rows=rows)
