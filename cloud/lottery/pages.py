"""The presale lottery's staff pages (``/presales``): the presales and a new one; a presale's
settings and lots, opening it, the freeze with its list's SHA-256, the seed entered by two
people, the draw (or a notarised draw's result imported), the results per lot, the refunds of
those not drawn and the seats assigned when the choosing window closes; the list and result
files to download.

Setting up, freezing, starting the refunds and assigning need ``presale.manage``; the seed,
the draw and an imported result need ``presale.draw``. Each irreversible step (freeze, draw,
import, assign) is confirmed on a page of its own first. The rules and their audit are the
core's (cloud/lottery/); these views only read the forms and show the refusals in the page's
language. Times are entered and shown in China Standard Time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Response, abort, render_template, request
from flask_babel import gettext as _

from cloud.catalog.tables import events, price_tiers, sessions
from cloud.core.audit import record
from cloud.core.errors import HubError
from cloud.core.jobs import enqueue
from cloud.lottery import cancelling, choosing, drawing, freezing, presales, refunding, views
from cloud.lottery.errors import LotteryError
from cloud.lottery.tables import presales as presales_table
from cloud.staff.tables import staff
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

bp = page_blueprint("presales", url_prefix="/presales")
MANAGE = "presale.manage"
DRAW = "presale.draw"
ZONE = "Asia/Shanghai"
MAX_RESULT_BYTES = 8 * 1024 * 1024
MAX_ID = 2**31 - 1
CHOOSE_DEFAULT = timedelta(days=2)  # the seat-choice window a draw form proposes


class _BadForm(ValueError):
    """A form field the page cannot read (a time, a number); its words are the message."""


@bp.context_processor
def _helpers() -> dict:
    return {"presale_state": presale_state_words, "channel_words": channel_words,
            "zone": ZONE, "MANAGE": MANAGE, "DRAW": DRAW}


def presale_state_words(state: str) -> str:
    return {"draft": _("draft"), "open": _("taking applications"),
            "frozen": _("frozen"), "drawn": _("drawn"),
            "assigned": _("seats assigned")}.get(state, state)


def channel_words(channel: str) -> str:
    return {"storefront": _("public site"), "booth": _("booths"),
            "partner": _("partner channels")}.get(channel, channel)


def _refusal(e: Exception) -> str:
    """A refusal in the page's words, a presale's states in words too."""
    if isinstance(e, LotteryError) and e.code == "presale_state":
        return rule_error(e, state=presale_state_words(e.params["state"]),
                          needs=presale_state_words(e.params["needs"]))
    return rule_error(e)


def _presale_or_404(conn, presale_id: int):
    try:
        return presales.presale(conn, presale_id)
    except LotteryError:
        abort(404)


def _time_field(name: str) -> datetime:
    text = request.form.get(name, "").strip()
    try:
        return parse_local(text, ZONE)
    except ValueError:
        raise _BadForm(_("Give a date and time.")) from None


def _number_field(name: str, lo: int, hi: int, *, optional: bool = False) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw and optional:
        return None
    value = whole_number(raw, lo, hi)
    if value is None:
        raise _BadForm(_("Give a whole number from %(lo)s to %(hi)s.", lo=lo, hi=hi))
    return value


def _event_choices(conn) -> list:
    return conn.execute(sa.select(events.c.id, events.c.code, events.c.name)
                        .order_by(events.c.code)).all()


def _tier_choices(conn, event_id: int) -> list:
    """The event's sessions × price tiers a lot may offer."""
    return conn.execute(sa.select(
        sessions.c.id.label("session_id"), sessions.c.name.label("session"),
        sessions.c.starts_at, price_tiers.c.id.label("tier_id"),
        price_tiers.c.name.label("tier"), price_tiers.c.amount, price_tiers.c.currency)
        .join(price_tiers, price_tiers.c.session_id == sessions.c.id)
        .where(sessions.c.event_id == event_id)
        .order_by(sessions.c.starts_at, sessions.c.id, price_tiers.c.id)).all()


def _who(conn, p) -> dict[str, str]:
    """The staff accounts a presale names (``staff:<id>``), by their user names."""
    named = [a.strip() for a in (p.created_by, p.seed_first_by, p.drawn_by,
                                 *(p.seed_by or "").split(",")) if a and a.strip()]
    ids = {int(a.removeprefix("staff:")): a for a in named
           if a.startswith("staff:") and a[6:].isdigit()}
    found = dict(conn.execute(sa.select(staff.c.id, staff.c.username)
                              .where(staff.c.id.in_(list(ids)))).all()) if ids else {}
    return {ids[i]: name for i, name in found.items()}


# -- the list and a new presale ---------------------------------------------------------------


def _index_page(form: dict, error: str = "", status: int = 200):
    with engine().connect() as conn:
        rows = presales.list_presales(conn)
        names = dict(conn.execute(sa.select(events.c.id, events.c.name)).all())
        choices = _event_choices(conn)
    return render_template("lottery/index.html", rows=rows, event_names=names,
                           events=choices, form=form, error=error,
                           CHANNELS=presales.CHANNELS), status


@bp.get("/")
@permission(MANAGE)
def index():
    return _index_page({"max_quantity": 4, "payment_minutes": 15, "real_name": "1",
                        "channels": ["storefront"]})


@bp.post("/")
@permission(MANAGE)
def create():
    form = {**request.form.to_dict(), "channels": request.form.getlist("channels")}
    try:
        values = {"event_id": _number_field("event_id", 1, MAX_ID),
                  "name": request.form.get("name", "")[:1000],
                  "opens_at": _time_field("opens_at"), "closes_at": _time_field("closes_at"),
                  "real_name": bool(request.form.get("real_name")),
                  "max_quantity": _number_field("max_quantity", 1, 10),
                  "buyer_limit": _number_field("buyer_limit", 1, 1000, optional=True),
                  "channels": tuple(request.form.getlist("channels")),
                  "payment_minutes": _number_field("payment_minutes", 1, 1440)}
        with engine().begin() as conn:
            presale_id = presales.create_presale(conn, actor=actor(), **values)
    except (HubError, _BadForm) as e:
        return _index_page(form, error=_refusal(e), status=422)
    ok(_("Presale %(id)s is set up as a draft: add its lots, then open it.", id=presale_id))
    return back("presales.detail", presale_id=presale_id)


# -- a presale --------------------------------------------------------------------------------


@bp.get("/<int:presale_id>")
@permission(MANAGE)
def detail(presale_id: int):
    with engine().connect() as conn:
        p = _presale_or_404(conn, presale_id)
        event = conn.execute(sa.select(events.c.code, events.c.name)
                             .where(events.c.id == p.event_id)).first()
        lots = presales.lots(conn, presale_id)
        counts = views.lot_counts(conn, presale_id)
        progress = refunding.progress(conn, presale_id)
        cancelled = cancelling.cancelled_progress(conn, presale_id)
        choices = _tier_choices(conn, p.event_id) if p.state == "draft" else []
        who = _who(conn, p)
    now = utcnow()
    return render_template("lottery/detail.html", p=p, event=event, lots=lots, counts=counts,
                           progress=progress, cancelled=cancelled, choices=choices, now=now,
                           me=actor(), who=who,
                           seed_names=", ".join(who.get(a.strip(), a.strip()) for a in
                                                (p.seed_by or "").split(",") if a.strip()),
                           may_draw=can(DRAW), closed=now >= p.closes_at,
                           choose_default=form_local(now.replace(second=0, microsecond=0)
                                                     + CHOOSE_DEFAULT, ZONE))


def _act(presale_id: int, done, step) -> Response:
    """Run a step of the core in one transaction, then say ``done`` (words, or words made of
    what the step returned); a refusal is flashed in the page's words."""
    try:
        with engine().begin() as conn:
            _presale_or_404(conn, presale_id)
            result = step(conn)
    except (HubError, _BadForm) as e:
        refused(_refusal(e))
    else:
        ok(done(result) if callable(done) else done)
    return back("presales.detail", presale_id=presale_id)


@bp.post("/<int:presale_id>/lots")
@permission(MANAGE)
def add_lot(presale_id: int):
    session_id, _sep, tier_id = request.form.get("lot", "").partition(":")
    session_id, tier_id = whole_number(session_id, 1, MAX_ID), whole_number(tier_id, 1, MAX_ID)

    def step(conn):
        if session_id is None or tier_id is None:
            raise _BadForm(_("Choose from the list."))
        tickets = _number_field("tickets", 1, 1_000_000)
        presales.add_lot(conn, presale_id, session_id, tier_id, tickets, actor())
    return _act(presale_id, _("The lot is added."), step)


@bp.post("/<int:presale_id>/open")
@permission(MANAGE)
def open_(presale_id: int):
    return _act(presale_id, _("The presale is open: it takes applications in its window."),
                lambda conn: presales.open_presale(conn, presale_id, actor()))


# -- the irreversible steps, each confirmed first ---------------------------------------------

def _confirm_page(presale_id: int, action: str):
    with engine().connect() as conn:
        p = _presale_or_404(conn, presale_id)
        lots = presales.lots(conn, presale_id)
        counts = views.lot_counts(conn, presale_id)
    now = utcnow()
    return render_template("lottery/confirm.html", p=p, action=action, lots=lots,
                           counts=counts, now=now,
                           choose_default=form_local(now.replace(second=0, microsecond=0)
                                                     + CHOOSE_DEFAULT, ZONE))


@bp.get("/<int:presale_id>/confirm/<any(freeze, assign):action>")
@permission(MANAGE)
def confirm(presale_id: int, action: str):
    return _confirm_page(presale_id, action)


@bp.get("/<int:presale_id>/confirm-draw/<any(draw, import):action>")
@permission(DRAW)
def confirm_draw(presale_id: int, action: str):
    return _confirm_page(presale_id, action)


@bp.post("/<int:presale_id>/freeze")
@permission(MANAGE)
def freeze(presale_id: int):
    return _act(presale_id, _("The applications are frozen: the list's SHA-256 is published "
                              "on the presale's public page. Next, two people enter the seed."),
                lambda conn: freezing.freeze(conn, presale_id, actor()))


@bp.post("/<int:presale_id>/seed")
@permission(DRAW)
def seed(presale_id: int):
    text = request.form.get("seed", "")[:1000]
    try:
        with engine().begin() as conn:
            _presale_or_404(conn, presale_id)
            outcome = freezing.enter_seed(conn, presale_id, actor(), text)
    except HubError as e:
        refused(_refusal(e))
        return back("presales.detail", presale_id=presale_id)
    if outcome == "first":
        ok(_("Your entry is kept (only its hash): waiting for a second person to enter the "
             "same seed."))
    elif outcome == "fixed":
        ok(_("Both entries agree: the seed is fixed. The draw can run."))
    else:
        refused(rule_error(LotteryError("seed_mismatch", field="seed")))
    return back("presales.detail", presale_id=presale_id)


@bp.post("/<int:presale_id>/draw")
@permission(DRAW)
def draw(presale_id: int):
    return _act(presale_id, _("The draw is done: winners and others are told, and winners may "
                              "choose seats until the window closes."),
                lambda conn: drawing.run_draw(conn, presale_id, actor(),
                                              _time_field("choose_closes_at")))


def _result_bytes() -> bytes:
    sent = request.files.get("result_file")
    data = sent.read(MAX_RESULT_BYTES + 1) if sent else b""
    if not data:
        data = request.form.get("result", "").replace("\r\n", "\n").encode()
    if not data.strip():
        raise _BadForm(_("Choose the result file or paste its text."))
    if len(data) > MAX_RESULT_BYTES:
        raise _BadForm(_("The result file is larger than %(mb)s MB.",
                         mb=MAX_RESULT_BYTES // (1024 * 1024)))
    return data


@bp.post("/<int:presale_id>/import")
@permission(DRAW)
def import_result(presale_id: int):
    return _act(presale_id, _("The result is checked and accepted: winners and others are "
                              "told, and winners may choose seats until the window closes."),
                lambda conn: drawing.import_result(conn, presale_id, actor(), _result_bytes(),
                                                   _time_field("choose_closes_at")))


@bp.post("/<int:presale_id>/assign")
@permission(MANAGE)
def assign(presale_id: int):
    return _act(presale_id,
                lambda done: _("Seat choice is closed: %(n)s winners were given seats, and "
                               "%(free)s kept seats are back on sale.",
                               n=done.seated, free=done.released),
                lambda conn: choosing.assign_rest(conn, presale_id, actor(), close_now=True))


@bp.post("/<int:presale_id>/refunds")
@permission(MANAGE)
def refunds(presale_id: int):
    """Those not drawn (once drawn), or with ``cancelled=1`` the applications of cancelled
    sessions, refunded by the worker."""
    only_cancelled = request.form.get("cancelled") == "1"

    def step(conn):
        refunding.refund_scope(conn, presale_id, only_cancelled)
        payload = {"presale_id": presale_id, **({"cancelled": True} if only_cancelled else {})}
        job = enqueue(conn, refunding.REFUND_JOB, payload)
        record(conn, actor(), "presale.refunds_started", f"presale:{presale_id}", None,
               {"job": job, "cancelled": only_cancelled})
    done = _("The refunds are started: the worker refunds the applications of the cancelled "
             "sessions in batches; the progress shows here.") if only_cancelled else _(
        "The refunds are started: the worker refunds those not drawn in batches; the progress "
        "shows here.")
    return _act(presale_id, done, step)


# -- the files --------------------------------------------------------------------------------


def _file(presale_id: int, what: str) -> Response:
    with engine().connect() as conn:
        row = conn.execute(sa.select(
            presales_table.c.list_file, presales_table.c.list_sha256,
            presales_table.c.result_file, presales_table.c.result_sha256)
            .where(presales_table.c.id == presale_id)).first()
    data, digest = (row.list_file, row.list_sha256) if row is not None and what == "list" \
        else (row.result_file, row.result_sha256) if row is not None else (None, None)
    if data is None:
        abort(404)
    name = f"presale-{presale_id}-{what}-{digest[:16]}.txt"
    return Response(bytes(data), mimetype="text/plain",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "X-Content-SHA256": digest, "Cache-Control": "no-store"})


@bp.get("/<int:presale_id>/list.txt")
@permission(MANAGE)
def list_file(presale_id: int):
    return _file(presale_id, "list")


@bp.get("/<int:presale_id>/result.txt")
@permission(MANAGE)
def result_file(presale_id: int):
    return _file(presale_id, "result")
