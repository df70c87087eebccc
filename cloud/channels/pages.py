"""The channels' staff pages (``/channels``, ``channels.manage``): every channel with its
on/off switch (confirmed first), its sale window and its quotas per session × price tier or
product × day with what is used of them; the contract customers' total track per session ×
tier; each booth's staff and opening hours, and its takings of a China day beside the ledger.
The pick-up of tickets booked online (``/channels/pick-up``) is the booth clerk's
(``tickets.sell``), at the booth they work at.

The box office sells under the name of the booth its clerk works at: a hook run before each
of the box office's requests (after the page shell has signed the clerk in) names the booth's
channel in ``g.sale_channel_id`` and its quota scopes in ``g.sale_quota_scopes``, which the box
office hands to the order, and refuses with a page saying why while the booth is switched off
or closed. A clerk at no booth sells as before, under no channel.

The rules and their audit are :mod:`cloud.channels.channels` and :mod:`cloud.channels.booths`;
these views only read forms and word refusals in the page's language. Times are China time.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask import abort, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from cloud.catalog.tables import price_tiers, products, sessions
from cloud.channels import booths
from cloud.channels.channels import (
    MAX_CAPACITY,
    channel,
    create_channel,
    list_channels,
    set_channel_quota,
    set_contract_quota,
    set_enabled,
    set_window,
)
from cloud.channels.errors import ChannelError
from cloud.channels.selling import open_channel, scopes_of
from cloud.channels.tables import SELLING_KINDS
from cloud.core.errors import HubError
from cloud.inventory.tables import quotas
from cloud.web.web import (
    actor,
    back,
    engine,
    form_local,
    ok,
    page_blueprint,
    parse_local,
    permission,
    qr_svg,
    refusal,
    refused,
)
from cloud.web.words import rule_error
from sync.timeutil import CHINA, utcnow
from sync.websafe import whole_number

bp = page_blueprint("channels", url_prefix="/channels")
MANAGE = "channels.manage"
SELL = "tickets.sell"
ZONE = "Asia/Shanghai"
MAX_ID = 2**31 - 1
BOX_OFFICE = "box_office"  # the blueprint of the box office (cloud/payments/booth_pages.py)
# the kinds a channel is set up as on this page (the others name a partner or customer, set
# up with them)
PAGE_KINDS = ("storefront", "booth", "outlet", "kiosk")
KIND_WORDS = {
    "storefront": lazy_gettext("storefront"), "booth": lazy_gettext("booth"),
    "outlet": lazy_gettext("outlet"), "kiosk": lazy_gettext("kiosk"),
    "contract": lazy_gettext("contract customer"), "distributor": lazy_gettext("distributor"),
    "agent": lazy_gettext("agent"), "api": lazy_gettext("API client"),
}
DAY_WORDS = (lazy_gettext("Mon"), lazy_gettext("Tue"), lazy_gettext("Wed"),
             lazy_gettext("Thu"), lazy_gettext("Fri"), lazy_gettext("Sat"),
             lazy_gettext("Sun"))


@bp.context_processor
def _helpers() -> dict:
    return {"kind_words": lambda k: str(KIND_WORDS.get(k, k)), "DAY_WORDS": DAY_WORDS,
            "SELLING_KINDS": SELLING_KINDS, "form_local": form_local, "ZONE": ZONE}


# -- the box office under a booth's name -----------------------------------------------------


@bp.record_once
def _box_office_hook(state) -> None:
    """Run :func:`sell_as_booth` before each box office request, after the page shell's own
    hook (which signs the clerk in): a blueprint's hooks run after the application's."""
    state.app.before_request_funcs.setdefault(BOX_OFFICE, []).append(sell_as_booth)


def sell_as_booth():
    """Name the clerk's booth for the box office's order, or refuse (409) while it is off
    or closed; a clerk at no booth sells under no channel."""
    if g.get("staff") is None:
        return None
    with engine().connect() as conn:
        booth = booths.booth_of_staff(conn, g.staff.id)
        if booth is None:
            return None
        g.sale_channel_id, g.sale_quota_scopes = booth.id, scopes_of(booth)
        try:
            open_channel(conn, booth.id, utcnow())
        except ChannelError as e:
            return refusal(e.status, _("The booth %(booth)s does not sell now",
                                       booth=booth.name), rule_error(e))
    return None


# -- channels --------------------------------------------------------------------------------


def _channel_or_404(conn: sa.Connection, channel_id: int):
    try:
        return channel(conn, channel_id)
    except ChannelError:
        abort(404)


@bp.get("")
@permission(MANAGE)
def index():
    with engine().connect() as conn:
        rows = list_channels(conn)
    return render_template("channels/index.html", rows=rows, kinds=PAGE_KINDS, form={},
                           errors={}, now=utcnow())


@bp.post("")
@permission(MANAGE)
def create():
    form = {k: request.form.get(k, "")[:200] for k in ("code", "name", "kind")}
    errors = {}
    if form["kind"] not in PAGE_KINDS:
        errors["kind"] = _("Choose a kind.")
    else:
        try:
            with engine().begin() as conn:
                channel_id = create_channel(conn, form["code"].strip(), form["name"],
                                            form["kind"], actor=actor(), now=utcnow())
        except HubError as e:
            errors[str(e.params.get("field") or "code")] = rule_error(e)
        else:
            ok(_("Channel %(code)s is set up, switched on.", code=form["code"].strip()))
            return back("channels.detail", channel_id=channel_id)
    refused(_("Nothing was set up: see the marked fields."))
    with engine().connect() as conn:
        rows = list_channels(conn)
    return render_template("channels/index.html", rows=rows, kinds=PAGE_KINDS, form=form,
                           errors=errors, now=utcnow()), 422


def _quota_rows(conn: sa.Connection, channel_id: int | None, kind: str) -> list:
    q = quotas.c
    query = (sa.select(q.id, q.capacity, q.used, q.session_id, q.price_tier_id, q.product_id,
                       q.day, sessions.c.name.label("session"), sessions.c.starts_at,
                       price_tiers.c.name.label("tier"), products.c.name.label("product"))
             .outerjoin(sessions, sessions.c.id == q.session_id)
             .outerjoin(price_tiers, price_tiers.c.id == q.price_tier_id)
             .outerjoin(products, products.c.id == q.product_id)
             .where(q.kind == kind).order_by(q.session_id, q.price_tier_id, q.product_id,
                                             q.day))
    if channel_id is not None:
        query = query.where(q.channel_id == channel_id)
    return conn.execute(query).all()


def _choices(conn: sa.Connection) -> dict:
    """The sessions with their tiers, and the products, a quota form offers."""
    tiers = conn.execute(sa.select(price_tiers.c.id, price_tiers.c.name,
                                   price_tiers.c.session_id, sessions.c.name.label("session"))
                         .join(sessions, sessions.c.id == price_tiers.c.session_id)
                         .order_by(sessions.c.starts_at, sessions.c.id, price_tiers.c.id)
                         ).all()
    found = conn.execute(sa.select(products.c.id, products.c.code, products.c.name)
                         .order_by(products.c.code)).all()
    return {"tiers": tiers, "products": found}


def _detail(channel_id: int, errors: dict | None = None, status: int = 200):
    with engine().connect() as conn:
        ch = _channel_or_404(conn, channel_id)
        page = {"ch": ch, "quota_rows": _quota_rows(conn, channel_id, "channel"),
                "errors": errors or {}, **_choices(conn)}
        if ch.kind in SELLING_KINDS:
            page["staff_rows"] = booths.booth_staff(conn, channel_id)
        try:
            open_channel(conn, channel_id, utcnow())
            page["selling"] = True
        except ChannelError:
            page["selling"] = False
    return render_template("channels/detail.html", **page), status


@bp.get("/<int:channel_id>")
@permission(MANAGE)
def detail(channel_id: int):
    return _detail(channel_id)


@bp.get("/<int:channel_id>/switch")
@permission(MANAGE)
def confirm_switch(channel_id: int):
    with engine().connect() as conn:
        ch = _channel_or_404(conn, channel_id)
    return render_template("channels/confirm.html", ch=ch)


@bp.post("/<int:channel_id>/switch")
@permission(MANAGE)
def switch(channel_id: int):
    wanted = request.form.get("enabled", "")
    if wanted not in ("on", "off"):
        refused(_("Nothing was changed: choose on or off."))
        return back("channels.confirm_switch", channel_id=channel_id)
    with engine().begin() as conn:
        ch = _channel_or_404(conn, channel_id)
        set_enabled(conn, channel_id, wanted == "on", actor(), utcnow())
    ok(_("Channel %(code)s is switched on.", code=ch.code) if wanted == "on" else
       _("Channel %(code)s is switched off: it sells nothing until switched on.",
         code=ch.code))
    return back("channels.detail", channel_id=channel_id)


class _BadField(ValueError):
    """A form field the page cannot read: its name and the words beside it."""

    def __init__(self, field: str, words: str):
        super().__init__(field)
        self.field, self.words = field, words


def _local(name: str) -> datetime | None:
    text = request.form.get(name, "").strip()
    if not text:
        return None
    try:
        return parse_local(text[:40], ZONE)
    except ValueError:
        raise _BadField(name, _("A date and time, China time.")) from None


def _whole(name: str, hi: int = MAX_ID, optional: bool = False) -> int | None:
    text = request.form.get(name, "").strip()
    if not text and optional:
        return None
    value = whole_number(text[:12], 0, hi) if text else None
    if value is None:
        raise _BadField(name, _("A whole number from 0 to %(high)s.", high=hi))
    return value


def _day(name: str) -> date | None:
    text = request.form.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise _BadField(name, _("A day as YYYY-MM-DD.")) from None


def _run(channel_id: int, work, done: str):
    """A change from a form of the channel's page: done (its words), or refused beside the
    field it names."""
    try:
        with engine().begin() as conn:
            _channel_or_404(conn, channel_id)
            work(conn)
    except _BadField as e:
        refused(_("Nothing was changed: see the marked fields."))
        return _detail(channel_id, {e.field: e.words}, 422)
    except HubError as e:
        refused(_("Nothing was changed: see the marked fields."))
        return _detail(channel_id, {str(e.params.get("field") or "form"): rule_error(e)},
                       409 if e.status == 409 else 422)
    ok(done)
    return back("channels.detail", channel_id=channel_id)


@bp.post("/<int:channel_id>/window")
@permission(MANAGE)
def window(channel_id: int):
    def work(conn):
        set_window(conn, channel_id, _local("sale_opens_at"), _local("sale_closes_at"),
                   actor(), utcnow())
    return _run(channel_id, work, _("The sale window is saved."))


def _tier_session(conn: sa.Connection, tier_id: int) -> int:
    found = conn.execute(sa.select(price_tiers.c.session_id)
                         .where(price_tiers.c.id == tier_id)).scalar()
    if found is None:
        raise _BadField("price_tier_id", _("Choose a session's price."))
    return found


@bp.post("/<int:channel_id>/quotas")
@permission(MANAGE)
def quota(channel_id: int):
    """The channel's quota of a session's price tier, or of a product (on a day)."""
    def work(conn):
        capacity = _whole("capacity", MAX_CAPACITY)
        tier = _whole("price_tier_id", optional=True)
        if tier is not None:
            set_channel_quota(conn, channel_id, capacity,
                              session_id=_tier_session(conn, tier), price_tier_id=tier,
                              actor=actor(), now=utcnow())
            return
        product = _whole("product_id", optional=True)
        if product is None:
            raise _BadField("price_tier_id", _("Choose a session's price or a product."))
        set_channel_quota(conn, channel_id, capacity, product_id=product, day=_day("day"),
                          actor=actor(), now=utcnow())
    return _run(channel_id, work, _("The channel's quota is saved."))


# -- booths: hours and staff -----------------------------------------------------------------


def _hours_form() -> dict | None:
    if request.form.get("always"):
        return None
    days = [int(d) for d in request.form.getlist("days") if d in "0123456" and len(d) == 1]
    return {"days": days, "opens": request.form.get("opens", "")[:5],
            "closes": request.form.get("closes", "")[:5]}


@bp.post("/<int:channel_id>/hours")
@permission(MANAGE)
def hours(channel_id: int):
    def work(conn):
        booths.set_booth_hours(conn, channel_id, _hours_form(), actor(), utcnow())
    return _run(channel_id, work, _("The opening hours are saved."))


@bp.post("/<int:channel_id>/staff")
@permission(MANAGE)
def add_staff(channel_id: int):
    username = request.form.get("username", "").strip()[:80]

    def work(conn):
        booths.add_staff(conn, channel_id, username, actor(), utcnow())
    return _run(channel_id, work, _("%(who)s works at this booth: their box office sales are "
                                    "the booth's.", who=username))


@bp.post("/<int:channel_id>/staff/remove")
@permission(MANAGE)
def remove_staff(channel_id: int):
    username = request.form.get("username", "").strip()[:80]

    def work(conn):
        booths.remove_staff(conn, channel_id, username, actor())
    return _run(channel_id, work, _("%(who)s no longer works at this booth.", who=username))


# -- the contract customers' total track -----------------------------------------------------


def _contract_page(errors: dict | None = None, status: int = 200):
    with engine().connect() as conn:
        rows = _quota_rows(conn, None, "contract")
        choices = _choices(conn)
    return render_template("channels/contract_quotas.html", quota_rows=rows,
                           errors=errors or {}, **choices), status


@bp.get("/contract-quotas")
@permission(MANAGE)
def contract_quotas():
    return _contract_page()


@bp.post("/contract-quotas")
@permission(MANAGE)
def set_contract():
    try:
        with engine().begin() as conn:
            tier = _whole("price_tier_id")
            set_contract_quota(conn, _tier_session(conn, tier), tier,
                               _whole("capacity", MAX_CAPACITY), actor(), utcnow())
    except _BadField as e:
        refused(_("Nothing was changed: see the marked fields."))
        return _contract_page({e.field: e.words}, 422)
    except HubError as e:
        refused(_("Nothing was changed: see the marked fields."))
        return _contract_page({str(e.params.get("field") or "capacity"): rule_error(e)},
                               409 if e.status == 409 else 422)
    ok(_("The contract customers' quota is saved."))
    return back("channels.contract_quotas")


# -- takings ---------------------------------------------------------------------------------


@bp.get("/<int:channel_id>/takings")
@permission(MANAGE)
def takings(channel_id: int):
    asked = request.args.get("day", "").strip()[:10]
    try:
        day = date.fromisoformat(asked) if asked else utcnow().astimezone(CHINA).date()
    except ValueError:
        day, asked = utcnow().astimezone(CHINA).date(), None
    with engine().connect() as conn:
        ch = _channel_or_404(conn, channel_id)
        if ch.kind not in SELLING_KINDS:
            abort(404)
        found = booths.takings(conn, channel_id, day)
    status = 200
    if asked is None:
        refused(_("A day as YYYY-MM-DD."))
        status = 422
    return render_template("channels/takings.html", ch=ch, t=found, day=day), status


# -- pick-up ---------------------------------------------------------------------------------


def _my_booth():
    with engine().connect() as conn:
        return booths.booth_of_staff(conn, g.staff.id)


@bp.get("/pick-up")
@permission(SELL)
def pick_up_form():
    booth = _my_booth()
    return render_template("channels/pick_up.html", booth=booth, form={}, errors={},
                           done=None), 200 if booth is not None else 409


@bp.post("/pick-up")
@permission(SELL)
def pick_up():
    booth = _my_booth()
    form = {"number": request.form.get("number", "").strip()[:40],
            "doc_type": request.form.get("doc_type", "")[:40]}
    if booth is None:
        return render_template("channels/pick_up.html", booth=None, form=form, errors={},
                               done=None), 409
    try:
        with engine().begin() as conn:
            done = booths.pick_up(conn, booth.id, form["number"], doc_type=form["doc_type"],
                                  doc_number=request.form.get("doc_number", "")[:60],
                                  actor=actor())
    except HubError as e:
        refused(_("Nothing was handed over: %(why)s", why=rule_error(e)))
        return render_template("channels/pick_up.html", booth=booth, form=form, errors={
            str(e.params.get("field") or "number"): rule_error(e)}, done=None), \
            409 if e.status == 409 else (403 if e.status == 403 else 422)
    ok(_("Order %(number)s: %(n)s tickets handed over. Print them now: this page is shown "
         "once.", number=done.order_number, n=len(done.tickets)))
    return render_template("channels/pick_up.html", booth=booth, form={}, errors={},
                           done=done, qr=qr_svg)
