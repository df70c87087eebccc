"""The buyer's site under ``/shop/<lang>/``: home, search, events, sessions and the seat map
of a zone, in Simplified Chinese (``zh``) and English (``en``) — the language is in the
address, so a page is the same for everyone who asks for it and a proxy may keep it.

``/shop/`` sends a visitor to their language's home: the one they chose before (the
``wicket_lang`` cookie the hub's pages share), else their browser's. Switching language goes
through ``/shop/language/<lang>``, which remembers the choice and returns to the same page in
the other language.

The browsing pages are public and kept for a second (:mod:`cloud.storefront.cached_pages`,
in front of the app),
served with ``Cache-Control: public`` and an ETag; they read no seat rows (what is left comes
from the availability cache) and show nothing personal. The buyer's own pages (sign-in,
account) are in :mod:`cloud.storefront.account_pages`.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from cloud.core.errors import HubError
from cloud.inventory.availability import AvailabilityCache
from cloud.storefront import browse, content, presale
from cloud.storefront import browser_pages as buyer_session
from cloud.storefront.cached_pages import KEEP_HEADER
from cloud.web.pages import LANG_COOKIE, LANGUAGES, chosen_language
from cloud.web.web import engine
from sync.timeutil import utcnow
from sync.websafe import local_path, whole_number

bp = Blueprint("shop", __name__, url_prefix="/shop")
HTML_LANG = {"zh": "zh-Hans", "en": "en"}


@bp.url_value_preprocessor
def _language_of_address(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values and "lang" in values:
        lang = values.pop("lang")
        if lang not in LANGUAGES:
            abort(404)
        g.language = lang


@bp.url_defaults
def _language_in_address(endpoint: str, values: dict[str, Any]) -> None:
    if "lang" not in values and current_app.url_map.is_endpoint_expecting(endpoint, "lang"):
        values["lang"] = g.get("language") or chosen_language()


@bp.before_request
def _guard() -> None:
    if request.method == "POST":
        buyer_session.check_csrf()


bp.after_request(buyer_session.after)


def other_language_url(lang: str) -> str:
    """This page in ``lang``: through the switch, which remembers the choice."""
    return url_for("shop.language", code=lang, next=request.full_path.rstrip("?"))


def in_language(target: str | None, lang: str) -> str:
    """A public site's address in ``lang`` (its home when it is not one of the site's)."""
    parts = (target or "").split("/", 3)  # "", "shop", lang, rest
    if len(parts) < 3 or parts[1] != "shop" or parts[2] not in LANGUAGES:
        return url_for("shop.home", lang=lang)
    return f"/shop/{lang}/" + (parts[3] if len(parts) > 3 else "")


@bp.app_template_global()
def shop_level_words(level: str) -> str:
    return {"plenty": _("Plenty left"), "few": _("Few left"),
            "sold_out": _("Sold out")}.get(level, level)


def shown(item: content.PublicItem) -> dict[str, Any]:
    """A content item in the page's language (else the other, marked with its ``lang``): its
    title, its body as paragraphs of lines (printed escaped), and its image's address."""
    title, body, lang = content.localised(item, g.get("language") or chosen_language())
    return {"title": title, "paragraphs": content.paragraphs(body), "lang": HTML_LANG[lang],
            "image": url_for("shop.content_image", image_id=item.image_id)
            if item.image_id else None, "event_id": item.event_id, "id": item.id}


@bp.context_processor
def _globals() -> dict[str, Any]:
    return {"shop_csrf_field": buyer_session.csrf_field, "other_language_url": other_language_url,
            "html_lang": HTML_LANG.get(g.get("language") or chosen_language(), "en"),
            "shown": shown}


def cached(render) -> Any:
    """The page at this address rendered now (``render`` gives its HTML and status), with
    its caching headers, marked for the page cache in front of the app to keep it
    ``AVAILABILITY_MAX_AGE`` seconds (see :mod:`cloud.storefront.cached_pages`)."""
    html, status = render()
    max_age = float(current_app.config["AVAILABILITY_MAX_AGE"])
    response = current_app.response_class(html, status=status, mimetype="text/html")
    response.add_etag(weak=True)
    response.headers["Cache-Control"] = f"public, max-age={max(1, int(max_age))}"
    response.headers["Content-Language"] = HTML_LANG[g.language]
    if max_age > 0:
        response.headers[KEEP_HEADER] = str(max_age)
    return response.make_conditional(request)


def _not_found() -> tuple[str, int]:
    return render_template("storefront/not_found.html"), 404


# -- the way in ---------------------------------------------------------------------------------

@bp.get("/")
def start():
    return redirect(url_for("shop.home", lang=chosen_language()), 303)


@bp.get("/language/<code>")
def language(code: str):
    if code not in LANGUAGES:
        abort(404)
    response = make_response(redirect(in_language(local_path(request.args.get("next")), code),
                                      303))
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, httponly=True,
                        samesite="Lax", secure=request.is_secure)
    return response


# -- browsing -----------------------------------------------------------------------------------

@bp.get("/<lang>/")
def home():
    def render() -> tuple[str, int]:
        now = utcnow()
        with engine().connect() as conn:
            cards = browse.upcoming(conn, now=now)
            found = browse.choices(conn, now=now)
            notices = content.published(conn, "announcement", now=now, limit=3)
            picks = content.recommended_events(conn, now=now, limit=6)
            news = content.published(conn, "news", now=now, limit=5)
        return render_template("storefront/home.html", cards=cards, choices=found,
                               notices=notices, picks=picks, news=news), 200
    return cached(render)


def _asked() -> tuple[browse.Search, dict[str, str]]:
    """The search asked for, and the fields it could not read (each named)."""
    args, bad = request.args, {}
    venue = day = None
    if args.get("venue"):
        venue = whole_number(args["venue"], 1, 2**31 - 1)
        if venue is None:
            bad["venue"] = _("Choose a venue from the list.")
    if args.get("date"):
        try:
            day = date.fromisoformat(args["date"])
        except ValueError:
            bad["date"] = _("Not a date.")
    text, discipline = args.get("q", ""), args.get("discipline", "")
    if len(text) > browse.MAX_QUERY:
        bad["q"] = _("At most %(n)s characters.", n=browse.MAX_QUERY)
    elif not text.isprintable():
        bad["q"] = _("Letters, digits and punctuation only.")
    if len(discipline) > 40 or not discipline.isprintable():
        bad["discipline"] = _("Choose one from the list.")
    if bad:
        return browse.Search(), bad
    return browse.Search(text, venue, day, discipline), bad


@bp.get("/<lang>/search")
def search():
    asked, bad = _asked()

    def render() -> tuple[str, int]:
        with engine().connect() as conn:
            found = browse.choices(conn)
            cards = [] if bad or asked.empty() else browse.search(conn, asked)
        return render_template("storefront/search.html", asked=asked, bad=bad, cards=cards,
                               choices=found, args=request.args), 400 if bad else 200
    return cached(render)


@bp.get("/<lang>/events/<int:event_id>")
def event(event_id: int):
    def render() -> tuple[str, int]:
        with engine().connect() as conn:
            cards = browse.event_sessions(conn, event_id)
            offered = presale.event_presales(conn, event_id, utcnow())  # issue 18
        if not cards:
            return _not_found()
        return render_template("storefront/event.html", cards=cards, presales=offered), 200
    return cached(render)


def _availability(session_id: int, zone_id: int | None = None) -> dict[str, Any] | None:
    cache: AvailabilityCache = current_app.extensions["availability"]
    try:
        found = cache.get(session_id, zone_id)
    except HubError:
        return None
    return json.loads(found.body) if found.on_sale else None


def _zones(counts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**z, "level": browse.level(z["free"], sum(z[k] for k in
                                                          ("free", "held", "sold", "kept")))}
            for z in counts["zones"]]


@bp.get("/<lang>/sessions/<int:session_id>")
def session(session_id: int):
    def render() -> tuple[str, int]:
        with engine().connect() as conn:
            card = browse.session_card(conn, session_id)
            tiers = browse.tiers(conn, card) if card else []
        counts = _availability(session_id) if card else None
        if card is None or counts is None:
            return _not_found()
        by_tier = {t["price_tier_id"]: t for t in counts["price_tiers"]}
        levels = {t.id: browse.level(by_tier[t.id]["free"], sum(
            by_tier[t.id][k] for k in ("free", "held", "sold", "kept")))
            for t in tiers if t.id in by_tier}
        return render_template("storefront/session.html", card=card, tiers=tiers,
                               levels=levels, zones=_zones(counts)), 200
    return cached(render)


PALETTE = ("#1f6feb", "#d97706", "#059669", "#9333ea", "#dc2626", "#0891b2", "#4d7c0f")


def seat_layout(seat_map: list[dict[str, Any]], tiers: list[browse.Tier]) -> dict[str, Any]:
    """Each seat's place on the drawing (a row per line, in position order), its price and its
    colour: the colour of its price tier, grey when it cannot be taken."""
    colours = {t.id: PALETTE[i % len(PALETTE)] for i, t in enumerate(tiers)}
    by_category = {t.seat_category: t for t in tiers if t.seat_category is not None}
    default = next((t for t in tiers if t.seat_category is None), None)
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in seat_map:
        rows.setdefault((s["level"], s["row"]), []).append(s)
    placed, width = [], 0
    for y, seats in enumerate(rows.values()):
        for x, s in enumerate(seats):
            tier = by_category.get(s["category"], default)
            placed.append({**s, "x": x, "y": y, "tier": tier,
                           "colour": colours[tier.id] if tier and s["status"] == "free"
                           else "#c8c8c8"})
        width = max(width, len(seats))
    return {"seats": placed, "rows": [{"level": lvl, "row": row, "y": y}
                                      for y, (lvl, row) in enumerate(rows)],
            "width": width, "height": len(rows),
            "legend": [(t, colours[t.id]) for t in tiers]}


@bp.get("/<lang>/sessions/<int:session_id>/zones/<int:zone_id>")
def zone(session_id: int, zone_id: int):
    def render() -> tuple[str, int]:
        with engine().connect() as conn:
            card = browse.session_card(conn, session_id)
            tiers = browse.tiers(conn, card) if card else []
        counts = _availability(session_id) if card else None
        seats = _availability(session_id, zone_id) if counts else None
        named = [z for z in _zones(counts)
                 if z["zone_id"] == zone_id] if counts else []
        if card is None or seats is None or not named or not seats["seat_map"]:
            return _not_found()
        return render_template("storefront/zone.html", card=card, zone=named[0],
                               layout=seat_layout(seats["seat_map"], tiers)), 200
    return cached(render)
