"""The public site shows what the content back office published, and only that: on the home
page and the news and FAQ pages, in the reader's language or else the other one marked with
its own, scheduled items from their time, text escaped, and images only while shown. On both
databases."""

from __future__ import annotations

import io
from datetime import timedelta

from PIL import Image

from cloud.storefront import content
from sync.timeutil import utcnow


def _live(shop, kind: str, draft: content.Draft) -> int:
    with shop.engine.begin() as conn:
        item = content.create_item(conn, kind, draft, "staff:1")
        content.submit_item(conn, item, "staff:1")
        content.publish_item(conn, item, "staff:2", revision_number=1)
    return item


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, "PNG")
    return out.getvalue()


def test_published_content_shows_on_the_home_and_news_pages(shop):
    _live(shop, "announcement", content.Draft(title_zh="入场须知", title_en="Before you come",
                                              body_en="Bring your ID.\n<script>x</script>"))
    _live(shop, "news", content.Draft(title_zh="只有中文", body_zh="新闻内容"))
    _live(shop, "event", content.Draft(title_en="Tonight's final", event_id=shop.event))
    with shop.engine.begin() as conn:  # written, never published
        content.create_item(conn, "news", content.Draft(title_en="Draft news"), "staff:1")
    c = shop.app.test_client()
    home = c.get("/shop/en/").get_data(as_text=True)
    assert "Before you come" in home and "Draft news" not in home
    assert f'href="/shop/en/events/{shop.event}"><strong>Tonight&#39;s final' in home
    assert "&lt;script&gt;x&lt;/script&gt;" in home and "<script>x" not in home
    # news written only in Chinese shows to an English reader, marked as Chinese
    news = c.get("/shop/en/news").get_data(as_text=True)
    assert 'lang="zh-Hans">\n  <h2>只有中文</h2>' in news
    zh = c.get("/shop/zh/").get_data(as_text=True)
    assert "入场须知" in zh and "Before you come" not in zh


def test_scheduled_content_waits_for_its_time_and_the_faq_keeps_its_order(shop):
    later = utcnow() + timedelta(days=1)
    _live(shop, "announcement", content.Draft(title_en="Tomorrow", publish_at=later))
    _live(shop, "faq", content.Draft(title_en="Second question", position=2))
    _live(shop, "faq", content.Draft(title_en="First question", position=1))
    c = shop.app.test_client()
    assert "Tomorrow" not in c.get("/shop/en/news").get_data(as_text=True)
    faq = c.get("/shop/en/faq").get_data(as_text=True)
    assert faq.index("First question") < faq.index("Second question")


def test_an_image_is_public_only_while_shown(shop):
    with shop.engine.begin() as conn:
        image = content.add_image(conn, _png(), "staff:1")
    c = shop.app.test_client()
    assert c.get(f"/shop/images/{image}").status_code == 404  # uploaded, not shown
    item = _live(shop, "news", content.Draft(title_en="With a picture", image_id=image))
    r = c.get(f"/shop/images/{image}")
    assert r.status_code == 200 and r.mimetype == "image/png" and r.data == _png()
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert f'src="/shop/images/{image}"' in c.get("/shop/en/news").get_data(as_text=True)
    with shop.engine.begin() as conn:
        content.withdraw_item(conn, item, "staff:2")
    assert c.get(f"/shop/images/{image}").status_code == 404
