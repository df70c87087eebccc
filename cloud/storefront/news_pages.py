"""The public site's content pages: news and announcements, the FAQ, and the images they show
(:mod:`cloud.storefront.content`: only what is published and shown now, by its
``publish_at`` / ``unpublish_at``). Like the browsing pages they are the same for everyone and
kept a moment in front of the app; an image is sent for a day's caching, by its id."""

from __future__ import annotations

from flask import abort, current_app, render_template

from cloud.storefront import content
from cloud.storefront.pages import bp, cached
from cloud.web.web import engine
from sync.timeutil import utcnow


@bp.get("/<lang>/news")
def news():
    def render() -> tuple[str, int]:
        now = utcnow()
        with engine().connect() as conn:
            notices = content.published(conn, "announcement", now=now)
            items = content.published(conn, "news", now=now)
        return render_template("storefront/news.html", notices=notices, items=items), 200
    return cached(render)


@bp.get("/<lang>/faq")
def faq():
    def render() -> tuple[str, int]:
        with engine().connect() as conn:
            items = content.published(conn, "faq", now=utcnow(), limit=100)
        return render_template("storefront/faq.html", items=items), 200
    return cached(render)


@bp.get("/images/<int:image_id>")
def content_image(image_id: int):
    with engine().connect() as conn:
        found = content.image(conn, image_id)
    if found is None:
        abort(404)
    media_type, data = found
    response = current_app.response_class(data, mimetype=media_type)
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
