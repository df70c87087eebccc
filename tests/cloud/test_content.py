"""The content back office's rules (cloud/storefront/content.py), on SQLite and PostgreSQL: a
second person publishes, scheduled publication and unpublication count by time in every public
read, every saved version is kept, images are checked by their bytes, and every change is
audited."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from PIL import Image

from cloud.buyers.identity_errors import IdentityError
from cloud.catalog.errors import CatalogError
from cloud.catalog.events import create_event
from cloud.core.audit import audit_log
from cloud.storefront import content
from cloud.storefront.content import ContentError, Draft
from cloud.storefront.tables import content_items, content_revisions

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
MAKER, CHECKER, OTHER = "staff:1", "staff:2", "staff:3"


def png(width: int = 4, height: int = 3) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def published_by_two(engine, kind="announcement", draft=None, at=NOW) -> int:
    """An item written by MAKER and published by CHECKER."""
    with engine.begin() as conn:
        item_id = content.create_item(conn, kind, draft or Draft(title_zh="公告", title_en="News"),
                                      MAKER, at)
        content.submit_item(conn, item_id, MAKER, at)
        content.publish_item(conn, item_id, CHECKER, at, revision_number=1)
    return item_id


def codes(error) -> str:
    return error.value.code


def test_the_maker_cannot_publish_their_own_item_and_a_second_person_can(engine):
    with engine.begin() as conn:
        item_id = content.create_item(conn, "news", Draft(title_en="Gates open at six"), MAKER,
                                      NOW)
        content.submit_item(conn, item_id, MAKER, NOW)
    with engine.begin() as conn, pytest.raises(ContentError) as e:
        content.publish_item(conn, item_id, MAKER, NOW)
    assert codes(e) == "content_maker_cannot_publish"
    with engine.begin() as conn:
        # OTHER edits it back to a draft; MAKER sends it again: neither may publish it now
        content.save_item(conn, item_id, Draft(title_en="Gates open at 18:00"), OTHER, NOW)
        content.submit_item(conn, item_id, MAKER, NOW)
    for who in (MAKER, OTHER):
        with engine.begin() as conn, pytest.raises(ContentError) as e:
            content.publish_item(conn, item_id, who, NOW)
        assert codes(e) == "content_maker_cannot_publish"
    with engine.begin() as conn:
        content.publish_item(conn, item_id, CHECKER, NOW, revision_number=2)
        it = content.item(conn, item_id)
    assert (it.state, it.live_revision, it.reviewed_by) == ("published", 2, CHECKER)
    assert it.live.published_by == CHECKER


def test_the_database_refuses_a_publisher_who_is_the_author(engine):
    with engine.begin() as conn:
        item_id = content.create_item(conn, "faq", Draft(title_zh="问"), MAKER, NOW)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.update(content_revisions).where(content_revisions.c.item_id == item_id)
                     .values(published_by=MAKER, published_at=NOW))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.update(content_items).where(content_items.c.id == item_id)
                     .values(submitted_by=MAKER, reviewed_by=MAKER))


def test_a_draft_is_published_only_from_review_and_only_the_version_read(engine):
    with engine.begin() as conn:
        item_id = content.create_item(conn, "news", Draft(title_en="One"), MAKER, NOW)
    with engine.begin() as conn, pytest.raises(ContentError) as e:
        content.publish_item(conn, item_id, CHECKER, NOW)
    assert codes(e) == "content_not_in_review"
    with engine.begin() as conn:
        content.submit_item(conn, item_id, MAKER, NOW)
    with engine.begin() as conn, pytest.raises(ContentError) as e:
        content.publish_item(conn, item_id, CHECKER, NOW, revision_number=7)
    assert codes(e) == "content_changed"
    with engine.begin() as conn, pytest.raises(ContentError) as e:
        content.save_item(conn, item_id, Draft(title_en="Two"), MAKER, NOW, base_revision=0)
    assert codes(e) == "content_changed"


def test_scheduled_content_shows_only_from_publish_at_until_unpublish_at(engine):
    start, end = NOW + timedelta(hours=2), NOW + timedelta(days=1)
    item_id = published_by_two(engine, draft=Draft(title_en="Presale", publish_at=start,
                                                   unpublish_at=end))
    with engine.connect() as conn:
        assert content.published(conn, "announcement", now=NOW) == []
        assert content.item(conn, item_id).showing(NOW) == "scheduled"
        shown = content.published(conn, "announcement", now=start)
        assert [(p.id, p.title_en, p.shown_from) for p in shown] == [(item_id, "Presale", start)]
        assert content.published(conn, "announcement", now=end - timedelta(seconds=1))
        assert content.published(conn, "announcement", now=end) == []
        assert content.item(conn, item_id).showing(end) == "ended"
        assert content.published(conn, "news", now=start) == []


def test_an_edit_keeps_the_live_version_showing_and_a_withdrawal_hides_it(engine):
    item_id = published_by_two(engine, draft=Draft(title_en="Old words"))
    with engine.begin() as conn:
        assert content.save_item(conn, item_id, Draft(title_en="New words"), MAKER, NOW) == 2
    with engine.connect() as conn:
        assert [p.title_en for p in content.published(conn, "announcement", now=NOW)] == \
            ["Old words"]
    with engine.begin() as conn, pytest.raises(ContentError) as e:
        content.delete_item(conn, item_id, MAKER, NOW)
    assert codes(e) == "content_is_live"
    with engine.begin() as conn:
        content.withdraw_item(conn, item_id, CHECKER, NOW)
    with engine.connect() as conn:
        assert content.published(conn, "announcement", now=NOW) == []
        assert content.item(conn, item_id).state == "draft"
    with engine.begin() as conn, pytest.raises(ContentError) as e:
        content.withdraw_item(conn, item_id, CHECKER, NOW)
    assert codes(e) == "content_not_live"


def test_every_saved_version_is_kept_and_a_deleted_draft_keeps_them(engine):
    with engine.begin() as conn:
        item_id = content.create_item(conn, "faq", Draft(title_zh="如何退票", body_zh="一"),
                                      MAKER, NOW)
        content.save_item(conn, item_id, Draft(title_zh="如何退票", body_zh="一\n\n二"), OTHER,
                          NOW + timedelta(minutes=1))
        content.save_item(conn, item_id, Draft(title_zh="如何退票？", body_zh="三"), MAKER,
                          NOW + timedelta(minutes=2))
        content.delete_item(conn, item_id, MAKER, NOW)
    with engine.connect() as conn:
        found = content.revisions(conn, item_id)
        assert [(r.number, r.author, r.body_zh) for r in found] == [
            (3, MAKER, "三"), (2, OTHER, "一\n\n二"), (1, MAKER, "一")]
        assert content.list_items(conn) == []
        assert [i.id for i in content.list_items(conn, state="deleted")] == [item_id]
    with engine.begin() as conn, pytest.raises(ContentError) as e:
        content.save_item(conn, item_id, Draft(title_zh="再"), MAKER, NOW)
    assert codes(e) == "content_deleted"


def test_text_is_kept_plain_and_checked(engine):
    with engine.begin() as conn:
        item_id = content.create_item(conn, "news", Draft(
            title_en="  Two\nlines\x00 ", body_en="<b>bold</b>\r\n\r\n\r\n\r\nnext\t x  "),
            MAKER, NOW)
        r = content.item(conn, item_id).current
        assert (r.title_en, r.body_en) == ("Two lines", "<b>bold</b>\n\nnext  x")
        assert content.paragraphs(r.body_en) == [["<b>bold</b>"], ["next  x"]]
        for draft, code in ((Draft(), "content_untitled"),
                            (Draft(title_en="x" * 201), "content_too_long"),
                            (Draft(title_en="x", position=-1), "content_bad_position"),
                            (Draft(title_en="x", publish_at=NOW, unpublish_at=NOW),
                             "content_bad_schedule"),
                            (Draft(title_en="x", image_id=999), "unknown_content_image")):
            with pytest.raises(ContentError) as e:
                content.create_item(conn, "news", draft, MAKER, NOW)
            assert codes(e) == code
        with pytest.raises(ContentError) as e:
            content.create_item(conn, "advert", Draft(title_en="x"), MAKER, NOW)
        assert codes(e) == "unknown_content_kind"


def test_the_reader_gets_their_language_else_the_other():
    both = content.PublicItem(1, "news", "开门", "Doors open", "正文", "Body", None, 0, None)
    only_zh = content.PublicItem(2, "news", "开门", "", "正文", "", None, 0, None)
    assert content.localised(both, "en") == ("Doors open", "Body", "en")
    assert content.localised(both, "zh") == ("开门", "正文", "zh")
    assert content.localised(only_zh, "en") == ("开门", "正文", "zh")


def test_recommended_events_name_their_event_in_order(engine):
    with engine.begin() as conn:
        final = create_event(conn, "FINAL", "The Final")
        semi = create_event(conn, "SEMI", "The Semi-final")
        with pytest.raises(ContentError) as e:
            content.create_item(conn, "event", Draft(title_en="Go"), MAKER, NOW)
        assert codes(e) == "content_event_missing"
        with pytest.raises(CatalogError):
            content.create_item(conn, "event", Draft(title_en="Go", event_id=999), MAKER, NOW)
    published_by_two(engine, "event", Draft(title_en="Last seats", event_id=final, position=2))
    published_by_two(engine, "event", Draft(title_zh="热卖", event_id=semi, position=1))
    with engine.connect() as conn:
        shown = content.recommended_events(conn, now=NOW)
    assert [(e.event_code, e.event_name, e.position) for e in shown] == [
        ("SEMI", "The Semi-final", 1), ("FINAL", "The Final", 2)]


def test_images_are_checked_by_type_and_size_and_public_only_when_shown(engine):
    with engine.begin() as conn:
        for data, code in ((b"GIF89a" + b"\0" * 20, "photo_type_refused"),
                           (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "photo_type_refused"),
                           (png()[:30], "photo_unreadable"),
                           (b"\x89PNG\r\n\x1a\n" + b"\0" * content.MAX_IMAGE_BYTES,
                            "photo_too_large")):
            with pytest.raises(IdentityError) as e:
                content.add_image(conn, data, MAKER, NOW)
            assert codes(e) == code
        image_id = content.add_image(conn, png(), MAKER, NOW)
        assert content.image(conn, image_id, now=NOW) is None   # uploaded, not shown
        assert content.staff_image(conn, image_id) == ("image/png", png())
    item_id = published_by_two(engine, draft=Draft(title_en="Map", image_id=image_id,
                                                   unpublish_at=NOW + timedelta(hours=1)))
    with engine.connect() as conn:
        assert content.image(conn, image_id, now=NOW) == ("image/png", png())
        assert content.image(conn, image_id, now=NOW + timedelta(hours=1)) is None
        assert content.published(conn, "announcement", now=NOW)[0].image_id == image_id
    assert item_id


def test_every_change_is_audited(engine):
    item_id = published_by_two(engine)
    with engine.begin() as conn:
        content.save_item(conn, item_id, Draft(title_en="Again"), OTHER, NOW)
        content.submit_item(conn, item_id, OTHER, NOW)
        content.return_item(conn, item_id, CHECKER, "Spell the time out", NOW)
        content.withdraw_item(conn, item_id, CHECKER, NOW)
        content.add_image(conn, png(), MAKER, NOW)
        rows = conn.execute(sa.select(audit_log.c.actor, audit_log.c.action)
                            .where(audit_log.c.action.startswith("content."))
                            .order_by(audit_log.c.id)).all()
        assert content.item(conn, item_id).review_note == "Spell the time out"
    assert [tuple(r) for r in rows] == [
        (MAKER, "content.create"), (MAKER, "content.submit"), (CHECKER, "content.publish"),
        (OTHER, "content.save"), (OTHER, "content.submit"), (CHECKER, "content.return"),
        (CHECKER, "content.withdraw"), (MAKER, "content.image_upload")]


def test_the_docs_name_every_refusal_and_state():
    from pathlib import Path

    from cloud.storefront.tables import CONTENT_STATES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "content.md").read_text("utf-8")
    assert {c for c in ContentError.codes if f"| `{c}` |" not in doc} == set()
    assert {s for s in CONTENT_STATES if f"| `{s}` |" not in doc} == set()


def _migrate(url: str, revision: str, down: bool = False) -> None:
    from alembic import command

    from cloud.core.db import alembic_config, make_engine

    engine = make_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
    engine.dispose()


@pytest.mark.empty_hub
def test_migration_0029_gives_the_content_role_the_second_persons_permission(hub_url):
    from cloud.core.db import make_engine
    from cloud.staff import roles

    _migrate(hub_url, "0029")
    engine = make_engine(hub_url)
    try:
        with engine.connect() as conn:
            held = roles.matrix(conn)
        assert {"content.manage", "content.publish"} <= held["content"]
        assert [r for r, perms in held.items() if "content.publish" in perms] == \
            ["admin", "content"]
        _migrate(hub_url, "0028", down=True)
        with engine.connect() as conn:
            assert "content.publish" not in set().union(*roles.matrix(conn).values())
            assert not sa.inspect(conn).has_table("content_items")
    finally:
        engine.dispose()


def test_the_demo_has_an_announcement_a_faq_entry_and_a_recommended_event(engine):
    from cloud.demo import load_demo

    with engine.begin() as conn:
        load_demo(conn, tickets=3, now=NOW)
    with engine.connect() as conn:
        assert [p.title_en for p in content.published(conn, "announcement", now=NOW)] == \
            ["Before you come"]
        assert [p.title_zh for p in content.published(conn, "faq", now=NOW)] == ["可以退票吗？"]
        assert [e.event_code for e in content.recommended_events(conn, now=NOW)] == ["GAMES"]
