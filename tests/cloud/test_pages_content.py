"""The content back office's pages (/content): only content.manage opens them and only
content.publish publishes; a maker writes and sends for review, a second person publishes
after a confirmation, the versions and the audit rows are there, images are checked, and the
text is escaped, never markup."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa
from PIL import Image

from cloud.core.audit import audit_log
from cloud.staff.staff import create_staff
from cloud.staff.tables import role_permissions
from cloud.storefront import content
from cloud.storefront.tables import content_items
from sync.timeutil import utcnow
from tests.cloud.pagekit import build_hub, csrf, post, sign_in, text


@pytest.fixture
def hub(hub_url):
    h = build_hub(hub_url)
    with h.engine.begin() as conn:
        for name in ("writer", "editor"):
            h.staff[name] = create_staff(conn, f"{name}-user", "correct horse battery",
                                         "content", actor="test")
    yield h
    h.engine.dispose()


def client(hub, username: str):
    c = hub.app.test_client()
    sign_in(c, f"{username}-user")
    return c


FORM = {"title_zh": "开票通知", "title_en": "Sale opens",
        "body_zh": "第一段\n\n第二段", "body_en": "<script>alert(1)</script>\nline two",
        "position": "0", "image_id": "", "publish_at": "", "unpublish_at": ""}


def new_item(c, **fields) -> int:
    r = post(c, "/content/new", {"kind": "announcement", **FORM, **fields},
             page="/content/new/announcement")
    assert r.status_code == 303, text(r)
    return int(re.search(r"/content/(\d+)$", r.headers["Location"]).group(1))


def test_only_content_staff_open_the_pages(hub):
    sales = hub.client("sales")
    for path in ("/content/", "/content/new/news", "/content/images"):
        assert sales.get(path).status_code == 403, path
    assert "/content/" not in text(sales.get("/"))
    writer = client(hub, "writer")
    for path in ("/content/", "/content/new/faq", "/content/new/event",
                 "/content/images"):
        assert writer.get(path).status_code == 200, path
    assert writer.get("/content/new/advert").status_code == 404
    assert 'href="/content/"' in text(writer.get("/"))


def test_a_maker_writes_and_sends_and_a_second_person_publishes_after_a_confirmation(hub):
    writer, editor = client(hub, "writer"), client(hub, "editor")
    item_id = new_item(writer)
    page = text(writer.get(f"/content/{item_id}"))
    assert "Sale opens" in page and "开票通知" in page and "<p>第一段</p><p>第二段</p>" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    r = post(writer, f"/content/{item_id}/submit", {"revision": "1"},
             page=f"/content/{item_id}")
    assert r.status_code == 303
    own = text(writer.get(f"/content/{item_id}"))
    assert "maker-hint" in own and "publish-content" not in own
    # the page hides the button; the rule refuses the maker all the same
    r = post(writer, f"/content/{item_id}/publish", {"revision": "1"},
             page=f"/content/{item_id}", follow_redirects=True)
    assert "another person decides it" in text(r)
    with hub.engine.connect() as conn:
        assert content.item(conn, item_id).state == "review"
    assert "publish-content" in text(editor.get(f"/content/{item_id}"))
    confirm = text(editor.get(f"/content/{item_id}/confirm/publish"))
    assert "confirm-publish" in confirm and "Sale opens" in confirm
    r = post(editor, f"/content/{item_id}/publish", {"revision": "1"},
             page=f"/content/{item_id}/confirm/publish", follow_redirects=True)
    assert "Published" in text(r)
    with hub.engine.connect() as conn:
        it = content.item(conn, item_id)
        assert (it.state, it.live_revision) == ("published", 1)
        shown = content.published(conn, "announcement", now=utcnow())
        assert [p.id for p in shown] == [item_id]
        actions = conn.execute(sa.select(audit_log.c.action, audit_log.c.actor).where(
            audit_log.c.subject == f"content:{item_id}").order_by(audit_log.c.id)).all()
    assert [tuple(a) for a in actions] == [
        ("content.create", f"staff:{hub.staff['writer']}"),
        ("content.submit", f"staff:{hub.staff['writer']}"),
        ("content.publish", f"staff:{hub.staff['editor']}")]


def test_publishing_needs_content_publish(hub):
    writer, editor = client(hub, "writer"), client(hub, "editor")
    item_id = new_item(writer)
    post(writer, f"/content/{item_id}/submit", {"revision": "1"}, page=f"/content/{item_id}")
    with hub.engine.begin() as conn:
        conn.execute(sa.delete(role_permissions).where(
            role_permissions.c.role == "content",
            role_permissions.c.permission == "content.publish"))
    assert editor.get(f"/content/{item_id}/confirm/publish").status_code == 403
    r = post(editor, f"/content/{item_id}/publish", {"revision": "1"}, page="/content/")
    assert r.status_code == 403
    assert "publish-content" not in text(editor.get(f"/content/{item_id}"))
    with hub.engine.connect() as conn:
        assert content.item(conn, item_id).state == "review"


def test_edits_keep_every_version_and_withdrawing_and_deleting_ask_first(hub):
    writer, editor, admin = client(hub, "writer"), client(hub, "editor"), hub.client("admin")
    item_id = new_item(writer)
    r = post(writer, f"/content/{item_id}/edit",
             {**FORM, "title_en": "Sale opens at ten", "base_revision": "1"},
             page=f"/content/{item_id}/edit")
    assert r.status_code == 303
    stale = post(editor, f"/content/{item_id}/edit",
                 {**FORM, "title_en": "Old edit", "base_revision": "1"},
                 page=f"/content/{item_id}/edit")
    assert stale.status_code == 422 and "read the new version first" in text(stale)
    versions = text(writer.get(f"/content/{item_id}/revisions"))
    assert "Sale opens at ten" in versions and "Sale opens" in versions
    assert "Sale opens</h4>" in text(writer.get(f"/content/{item_id}/revisions/1"))
    assert writer.get(f"/content/{item_id}/revisions/9").status_code == 404
    post(writer, f"/content/{item_id}/submit", {"revision": "2"}, page=f"/content/{item_id}")
    post(editor, f"/content/{item_id}/publish", {"revision": "2"}, page=f"/content/{item_id}")
    assert "confirm-withdraw" in text(admin.get(f"/content/{item_id}/confirm/withdraw"))
    post(admin, f"/content/{item_id}/withdraw", page=f"/content/{item_id}")
    assert "confirm-delete" in text(writer.get(f"/content/{item_id}/confirm-delete"))
    post(writer, f"/content/{item_id}/delete", page=f"/content/{item_id}")
    with hub.engine.connect() as conn:
        assert conn.execute(sa.select(content_items.c.state)
                            .where(content_items.c.id == item_id)).scalar() == "deleted"
        assert len(content.revisions(conn, item_id)) == 2
    assert f'/content/{item_id}"' not in text(writer.get("/content/"))
    assert f'/content/{item_id}"' in text(writer.get("/content/?state=deleted"))
    assert writer.get("/content/?state=lost").status_code == 400


def test_a_refused_form_is_shown_again_with_its_words(hub):
    writer = client(hub, "writer")
    r = post(writer, "/content/new", {"kind": "news", **FORM, "title_zh": "", "title_en": ""},
             page="/content/new/news")
    assert r.status_code == 422 and "give a title in Chinese or in English" in text(r)
    r = post(writer, "/content/new", {"kind": "news", **FORM, "publish_at": "tomorrow"},
             page="/content/new/news")
    assert r.status_code == 422 and "Give a date and time" in text(r)
    writer.post("/lang", data={"lang": "zh", "next": "/", "csrf_token": csrf(writer, "/")})
    r = post(writer, "/content/new", {"kind": "news", **FORM, "title_zh": "", "title_en": ""},
             page="/content/new/news")
    assert "请填写中文或英文标题" in text(r)
    assert "公告" in text(writer.get("/content/"))


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (2, 2), (0, 0, 255)).save(out, "PNG")
    return out.getvalue()


def test_images_are_uploaded_checked_and_shown_to_staff(hub):
    writer = client(hub, "writer")
    token = csrf(writer, "/content/images")
    bad = writer.post("/content/images", data={"csrf_token": token, "image": (
        io.BytesIO(b"<svg/>"), "pretty.png", "image/png")}, follow_redirects=True)
    assert "a photo must be a JPEG or PNG image" in text(bad)
    big = writer.post("/content/images", data={"csrf_token": token, "image": (
        io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * content.MAX_IMAGE_BYTES), "big.png")},
        follow_redirects=True)
    assert "a photo is at most" in text(big)
    good = writer.post("/content/images", data={"csrf_token": token, "image": (
        io.BytesIO(_png()), "blue.png")}, follow_redirects=True)
    assert "is uploaded" in text(good)
    image_id = int(re.search(r"Image (\d+) is uploaded", text(good)).group(1))
    r = writer.get(f"/content/images/{image_id}")
    assert (r.status_code, r.mimetype, r.data) == (200, "image/png", _png())
    assert hub.client("sales").get(f"/content/images/{image_id}").status_code == 403
    item_id = new_item(writer, image_id=str(image_id))
    assert f"/content/images/{image_id}" in text(writer.get(f"/content/{item_id}"))
