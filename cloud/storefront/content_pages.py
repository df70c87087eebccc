"""The content back office's pages (``/content``): the list of items with kind and state
filters, a new item and its edits (each save a new version), an item's page with its current
and live versions side by side in both languages, sending it for review, and the second
person's decisions — publish, send back, withdraw — and deleting a draft, each of the
irreversible ones after a confirmation; every saved version and the images.

Writing, sending for review and deleting need ``content.manage``; publishing, sending back and
withdrawing need ``content.publish``, and the rule itself refuses whoever wrote or sent the
version (cloud/storefront/content.py). Times are entered and shown in China Standard Time.
"""

from __future__ import annotations

from datetime import datetime

from flask import Response, abort, render_template, request
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.storefront import content
from cloud.storefront.tables import CONTENT_KINDS, CONTENT_STATES
from cloud.web.query import query_choice, query_int
from cloud.web.web import (
    actor,
    back,
    can,
    engine,
    form_local,
    ok,
    page_blueprint,
    parse_local,
    permission,
    refused,
)
from cloud.web.words import rule_error
from sync.timeutil import utcnow
from sync.websafe import whole_number

bp = page_blueprint("content", url_prefix="/content")
MANAGE = "content.manage"
PUBLISH = "content.publish"
ZONE = "Asia/Shanghai"
DECISIONS = ("publish", "return", "withdraw")
DRAFT_FIELDS = ("title_zh", "title_en", "body_zh", "body_en")


@bp.context_processor
def _helpers() -> dict:
    """What the content templates use to print a body: its paragraphs, each line escaped."""
    return {"paragraphs": content.paragraphs}


class _BadForm(ValueError):
    """A form field the page cannot read (a time, a number); its words are the message."""


def _item_or_404(conn, item_id: int) -> content.Item:
    try:
        return content.item(conn, item_id)
    except content.ContentError:
        abort(404)


@bp.get("/")
@permission(MANAGE)
def index():
    kind = query_choice("kind", CONTENT_KINDS, "")
    state = query_choice("state", CONTENT_STATES, "")
    before = query_int("before")
    with engine().connect() as conn:
        rows = content.list_items(conn, kind=kind or None, state=state or None, before=before)
        counts = content.counts(conn)
    return render_template("content/index.html", rows=rows, counts=counts, kind=kind,
                           state=state, KINDS=CONTENT_KINDS, STATES=CONTENT_STATES,
                           page=content.PAGE, now=utcnow(), zone=ZONE)


# -- writing ----------------------------------------------------------------------------------


def _time_field(name: str) -> datetime | None:
    text = request.form.get(name, "").strip()
    if not text:
        return None
    try:
        return parse_local(text, ZONE)
    except ValueError:
        raise _BadForm(_("Give a date and time.")) from None


def _draft_from_form() -> content.Draft:
    """The form's draft; the rule checks what the words say, this only reads the fields."""
    def number(name: str, high: int) -> int | None:
        raw = request.form.get(name, "").strip()
        if not raw:
            return None
        value = whole_number(raw, 0, high)
        if value is None:
            raise _BadForm(_("The order number is a whole number from 0 to %(high)s.",
                             high=content.MAX_POSITION) if name == "position"
                           else _("Choose from the list."))
        return value
    return content.Draft(**{f: request.form.get(f, "")[:content.MAX_BODY + 1000]
                            for f in DRAFT_FIELDS},
                         image_id=number("image_id", 2**31 - 1),
                         event_id=number("event_id", 2**31 - 1),
                         position=number("position", content.MAX_POSITION) or 0,
                         publish_at=_time_field("publish_at"),
                         unpublish_at=_time_field("unpublish_at"))


def _form_of(d: content.Draft | None) -> dict:
    if d is None:
        return {f: "" for f in (*DRAFT_FIELDS, "image_id", "event_id", "position",
                                "publish_at", "unpublish_at")}
    return {**{f: getattr(d, f) for f in DRAFT_FIELDS},
            "image_id": d.image_id or "", "event_id": d.event_id or "", "position": d.position,
            "publish_at": form_local(d.publish_at, ZONE),
            "unpublish_at": form_local(d.unpublish_at, ZONE)}


def _edit_page(kind: str, form: dict, *, it: content.Item | None = None, error: str = "",
               status: int = 200):
    with engine().connect() as conn:
        images = content.recent_images(conn)
        events = content.event_choices(conn) if kind == "event" else []
    return render_template("content/edit.html", kind=kind, form=form, it=it, error=error,
                           images=images, events=events, zone=ZONE,
                           max_title=content.MAX_TITLE), status


@bp.get("/new/<kind>")
@permission(MANAGE)
def new(kind: str):
    if kind not in CONTENT_KINDS:
        abort(404)
    return _edit_page(kind, _form_of(None))


@bp.post("/new")
@permission(MANAGE)
def create():
    kind = request.form.get("kind", "")
    if kind not in CONTENT_KINDS:
        abort(400)
    try:
        draft = _draft_from_form()
        with engine().begin() as conn:
            item_id = content.create_item(conn, kind, draft, actor())
    except (HubError, _BadForm) as e:
        return _edit_page(kind, request.form.to_dict(), error=rule_error(e), status=422)
    ok(_("The draft is saved as version 1."))
    return back("content.detail", item_id=item_id)


@bp.get("/<int:item_id>/edit")
@permission(MANAGE)
def edit(item_id: int):
    with engine().connect() as conn:
        it = _item_or_404(conn, item_id)
    if it.state == "deleted":
        abort(404)
    return _edit_page(it.kind, _form_of(it.current), it=it)


@bp.post("/<int:item_id>/edit")
@permission(MANAGE)
def save(item_id: int):
    with engine().connect() as conn:
        it = _item_or_404(conn, item_id)
    base = whole_number(request.form.get("base_revision", ""), 1, 2**31 - 1)
    try:
        draft = _draft_from_form()
        with engine().begin() as conn:
            number = content.save_item(conn, item_id, draft, actor(), base_revision=base or 0)
    except (HubError, _BadForm) as e:
        return _edit_page(it.kind, {**request.form.to_dict()}, it=it, error=rule_error(e),
                          status=422)
    ok(_("Version %(n)s is saved as a draft.", n=number))
    return back("content.detail", item_id=item_id)


# -- an item and its versions -----------------------------------------------------------------


@bp.get("/<int:item_id>")
@permission(MANAGE)
def detail(item_id: int):
    with engine().connect() as conn:
        it = _item_or_404(conn, item_id)
        makers = content.makers(conn, it)
        event = content.event_name(conn, it.current.event_id)
    return render_template("content/item.html", it=it, me=actor(), is_maker=actor() in makers,
                           may_publish=can(PUBLISH), now=utcnow(), zone=ZONE, event=event)


@bp.post("/<int:item_id>/submit")
@permission(MANAGE)
def submit(item_id: int):
    number = whole_number(request.form.get("revision", ""), 1, 2**31 - 1)
    try:
        with engine().begin() as conn:
            content.submit_item(conn, item_id, actor(), revision_number=number or 0)
    except HubError as e:
        refused(rule_error(e))
    else:
        ok(_("Sent for review: another person publishes it."))
    return back("content.detail", item_id=item_id)


@bp.get("/<int:item_id>/revisions")
@permission(MANAGE)
def revisions(item_id: int):
    with engine().connect() as conn:
        it = _item_or_404(conn, item_id)
        found = content.revisions(conn, item_id)
    return render_template("content/revisions.html", it=it, revisions=found, zone=ZONE)


@bp.get("/<int:item_id>/revisions/<int:number>")
@permission(MANAGE)
def revision(item_id: int, number: int):
    with engine().connect() as conn:
        it = _item_or_404(conn, item_id)
        r = content.revision(conn, item_id, number)
        if r is None:
            abort(404)
        event = content.event_name(conn, r.event_id)
    return render_template("content/revision.html", it=it, r=r, zone=ZONE, event=event)


# -- the second person's decisions, and deleting a draft --------------------------------------


def _confirm_page(item_id: int, action: str):
    with engine().connect() as conn:
        it = _item_or_404(conn, item_id)
        event = content.event_name(conn, it.current.event_id)
    heading = {"publish": _("Publish content item %(id)s", id=item_id),
               "return": _("Send content item %(id)s back", id=item_id),
               "withdraw": _("Withdraw content item %(id)s", id=item_id),
               "delete": _("Delete content item %(id)s", id=item_id)}[action]
    endpoint = {"return": "content.send_back"}.get(action, f"content.{action}")
    return render_template("content/confirm.html", it=it, action=action, zone=ZONE,
                           event=event, max_note=content.MAX_NOTE, heading=heading,
                           endpoint=endpoint)


@bp.get("/<int:item_id>/confirm/<action>")
@permission(PUBLISH)
def confirm(item_id: int, action: str):
    if action not in DECISIONS:
        abort(404)
    return _confirm_page(item_id, action)


@bp.get("/<int:item_id>/confirm-delete")
@permission(MANAGE)
def confirm_delete(item_id: int):
    return _confirm_page(item_id, "delete")


def _decide(item_id: int, action: str) -> None:
    number = whole_number(request.form.get("revision", ""), 1, 2**31 - 1) or 0
    with engine().begin() as conn:
        if action == "publish":
            content.publish_item(conn, item_id, actor(), revision_number=number)
        elif action == "return":
            content.return_item(conn, item_id, actor(), request.form.get("note", "")[:1000],
                                revision_number=number)
        elif action == "withdraw":
            content.withdraw_item(conn, item_id, actor())
        else:
            content.delete_item(conn, item_id, actor())


def _done_words(action: str) -> str:
    return {"publish": _("Published: it shows on the site from its start time."),
            "return": _("Sent back to its maker as a draft."),
            "withdraw": _("Withdrawn: it no longer shows on the site."),
            "delete": _("The draft is deleted; its versions are kept.")}[action]


def _act(item_id: int, action: str):
    try:
        _decide(item_id, action)
    except HubError as e:
        refused(rule_error(e))
    else:
        ok(_done_words(action))
    return back("content.detail", item_id=item_id)


@bp.post("/<int:item_id>/publish")
@permission(PUBLISH)
def publish(item_id: int):
    return _act(item_id, "publish")


@bp.post("/<int:item_id>/return")
@permission(PUBLISH)
def send_back(item_id: int):
    return _act(item_id, "return")


@bp.post("/<int:item_id>/withdraw")
@permission(PUBLISH)
def withdraw(item_id: int):
    return _act(item_id, "withdraw")


@bp.post("/<int:item_id>/delete")
@permission(MANAGE)
def delete(item_id: int):
    return _act(item_id, "delete")


# -- images -----------------------------------------------------------------------------------


@bp.get("/images")
@permission(MANAGE)
def images():
    with engine().connect() as conn:
        found = content.recent_images(conn, limit=60)
    return render_template("content/images.html", images=found, zone=ZONE,
                           limit_mb=content.MAX_IMAGE_BYTES // (1024 * 1024))


@bp.post("/images")
@permission(MANAGE)
def upload():
    sent = request.files.get("image")
    data = sent.read(content.MAX_IMAGE_BYTES + 1) if sent else b""
    if not data:
        refused(_("Choose an image file."))
        return back("content.images")
    try:
        with engine().begin() as conn:
            image_id = content.add_image(conn, data, actor())
    except HubError as e:
        refused(rule_error(e))
    else:
        ok(_("Image %(id)s is uploaded.", id=image_id))
    return back("content.images")


@bp.get("/images/<int:image_id>")
@permission(MANAGE)
def image_file(image_id: int):
    with engine().connect() as conn:
        found = content.staff_image(conn, image_id)
    if found is None:
        abort(404)
    media_type, data = found
    return Response(data, mimetype=media_type,
                    headers={"Content-Disposition": "inline", "Cache-Control": "no-store"})
