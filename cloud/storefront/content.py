"""The content back office's rules: announcements, news, FAQ entries and recommended events,
written by one person and published by another.

An item moves draft → review → published. Every save is a new revision (:mod:`tables`); a
maker sends the current revision for review, and a second person publishes it — never anyone
who wrote a revision since the last publication, the current revision's author, or who sent
it for review (``content_maker_cannot_publish``; CHECKs on both tables stand behind it). The
publisher names the revision they read, so a version saved meanwhile is never published
unread (``content_changed``). A published item keeps showing its live revision while its next
one is written; a withdrawal takes it off the site at once. When a live revision shows is its
own ``publish_at`` / ``unpublish_at``, compared with ``now`` by every public read
(:func:`published`, :func:`recommended_events`, :func:`image`), so no job has to run at
those moments. Every change is audited (``content.*``).

Text is plain: titles one line, bodies paragraphs split by an empty line, control characters
taken out. Nothing is HTML; whoever shows it escapes it (:func:`paragraphs` splits it).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa

from cloud.buyers.photos import checked_photo
from cloud.catalog.errors import CatalogError
from cloud.catalog.tables import events
from cloud.core.audit import record
from cloud.core.errors import Code, HubError
from cloud.storefront.content_text import (  # localised, paragraphs: for the public pages
    clean_text,
    localised,  # noqa: F401
    paragraphs,  # noqa: F401
)
from cloud.storefront.tables import (
    CONTENT_KINDS,
    CONTENT_STATES,
    content_images,
    content_items,
    content_revisions,
)
from sync.timeutil import utcnow

MAX_TITLE = 200
MAX_BODY = 20_000
MAX_NOTE = 200
MAX_POSITION = 9999
MAX_IMAGE_BYTES = 2 * 1024 * 1024
PAGE = 50
PUBLIC_KINDS = ("announcement", "news", "faq")


class ContentError(HubError):
    """A content item, revision, decision or image the rules refuse."""

    codes = {
        "unknown_content": Code(404, "no content item %(item_id)s"),
        "unknown_content_kind": Code(422, "content is one of: %(kinds)s"),
        "unknown_content_image": Code(404, "no content image %(image_id)s"),
        "content_untitled": Code(422, "give a title in Chinese or in English"),
        "content_too_long": Code(422, "%(field)s is at most %(limit)s characters"),
        "content_bad_position": Code(422, "the order number is a whole number from 0 to "
                                          "%(high)s"),
        "content_bad_schedule": Code(422, "content stops showing only after it starts"),
        "content_event_missing": Code(422, "a recommended event names an event"),
        "content_changed": Code(409, "content item %(item_id)s is at version %(current)s, not "
                                     "%(revision)s: read the new version first"),
        "content_deleted": Code(409, "content item %(item_id)s is deleted"),
        "content_not_draft": Code(409, "content item %(item_id)s is %(state)s: only a draft "
                                       "or a withdrawn item is sent for review"),
        "content_not_in_review": Code(409, "content item %(item_id)s is %(state)s, not in "
                                           "review"),
        "content_maker_cannot_publish": Code(409, "%(maker)s wrote or sent content item "
                                                  "%(item_id)s for review: another person "
                                                  "decides it"),
        "content_not_live": Code(409, "content item %(item_id)s is not on the site"),
        "content_not_deletable": Code(409, "content item %(item_id)s is %(state)s: only a "
                                           "draft or a withdrawn item is deleted"),
        "content_is_live": Code(409, "content item %(item_id)s is on the site: withdraw it "
                                     "first"),
    }


@dataclass(frozen=True)
class Draft:
    """What a maker writes: the words in both languages (either may be empty, not both
    titles), an image, the recommended event, the order number and when it shows."""

    title_zh: str = ""
    title_en: str = ""
    body_zh: str = ""
    body_en: str = ""
    image_id: int | None = None
    event_id: int | None = None
    position: int = 0
    publish_at: datetime | None = None
    unpublish_at: datetime | None = None


@dataclass(frozen=True)
class Revision(Draft):
    item_id: int = 0
    number: int = 0
    author: str = ""
    saved_at: datetime | None = None
    published_by: str | None = None
    published_at: datetime | None = None


@dataclass(frozen=True)
class Item:
    id: int
    kind: str
    state: str
    current_revision: int
    live_revision: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    submitted_by: str | None
    submitted_at: datetime | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str | None
    current: Revision
    live: Revision | None

    def showing(self, now: datetime) -> str:
        """Where the public site stands with it: ``live`` (shown now), ``scheduled`` (its
        ``publish_at`` is ahead), ``ended`` (its ``unpublish_at`` has passed) or ``off``."""
        if self.live is None:
            return "off"
        if self.live.publish_at is not None and self.live.publish_at > now:
            return "scheduled"
        if self.live.unpublish_at is not None and self.live.unpublish_at <= now:
            return "ended"
        return "live"


@dataclass(frozen=True)
class PublicItem:
    """What the public sees of a live item: its words in both languages, for the page to
    pick the reader's (:func:`localised`)."""

    id: int
    kind: str
    title_zh: str
    title_en: str
    body_zh: str
    body_en: str
    image_id: int | None
    position: int
    shown_from: datetime | None
    event_id: int | None = None
    event_code: str | None = None
    event_name: str | None = None


# -- reading ------------------------------------------------------------------------------------


def _revision(row: sa.Row) -> Revision:
    return Revision(**{f: getattr(row, f) for f in Revision.__dataclass_fields__})


def revisions(conn: sa.Connection, item_id: int) -> list[Revision]:
    """Every saved version of an item, newest first."""
    return [_revision(r) for r in conn.execute(
        sa.select(content_revisions).where(content_revisions.c.item_id == item_id)
        .order_by(content_revisions.c.number.desc()))]


def revision(conn: sa.Connection, item_id: int, number: int) -> Revision | None:
    row = conn.execute(sa.select(content_revisions).where(
        content_revisions.c.item_id == item_id, content_revisions.c.number == number)).first()
    return _revision(row) if row is not None else None


def item(conn: sa.Connection, item_id: int, *, lock: bool = False) -> Item:
    """An item with its current and live revisions (``unknown_content`` if there is none)."""
    q = sa.select(content_items).where(content_items.c.id == item_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise ContentError("unknown_content", item_id=item_id)
    current = revision(conn, item_id, row.current_revision)
    live = None if row.live_revision is None else revision(conn, item_id, row.live_revision)
    fields = {f: getattr(row, f) for f in Item.__dataclass_fields__
              if f not in ("current", "live")}
    return Item(**fields, current=current, live=live)


@dataclass(frozen=True)
class ListedItem:
    id: int
    kind: str
    state: str
    title_zh: str
    title_en: str
    current_revision: int
    live_revision: int | None
    updated_at: datetime
    submitted_by: str | None
    publish_at: datetime | None
    unpublish_at: datetime | None


def list_items(conn: sa.Connection, *, kind: str | None = None, state: str | None = None,
               before: int | None = None, limit: int = PAGE) -> list[ListedItem]:
    """Items newest first, with their current revision's titles; deleted ones only when
    ``state`` asks for them. ``before`` pages by id."""
    i, r = content_items, content_revisions
    q = (sa.select(i.c.id, i.c.kind, i.c.state, r.c.title_zh, r.c.title_en,
                   i.c.current_revision, i.c.live_revision, i.c.updated_at, i.c.submitted_by,
                   r.c.publish_at, r.c.unpublish_at)
         .join(r, sa.and_(r.c.item_id == i.c.id, r.c.number == i.c.current_revision))
         .order_by(i.c.id.desc()).limit(limit))
    q = q.where(i.c.state == state) if state else q.where(i.c.state != "deleted")
    if kind:
        q = q.where(i.c.kind == kind)
    if before is not None:
        q = q.where(i.c.id < before)
    return [ListedItem(**r._mapping) for r in conn.execute(q)]


def counts(conn: sa.Connection) -> dict[str, int]:
    """How many items are in each state."""
    rows = conn.execute(sa.select(content_items.c.state, sa.func.count())
                        .group_by(content_items.c.state)).all()
    found = {state: 0 for state in CONTENT_STATES}
    found.update({state: n for state, n in rows})
    return found


def makers(conn: sa.Connection, it: Item) -> set[str]:
    """Who may not publish the item's current revision: whoever wrote a revision since the
    last one published, the current revision's author, and whoever sent it for review."""
    r = content_revisions
    last = conn.execute(sa.select(sa.func.max(r.c.number)).where(
        r.c.item_id == it.id, r.c.published_by.is_not(None))).scalar() or 0
    found = set(conn.execute(sa.select(r.c.author).where(
        r.c.item_id == it.id, r.c.number > last, r.c.number <= it.current_revision)).scalars())
    found.add(it.current.author)
    if it.submitted_by:
        found.add(it.submitted_by)
    return found


# -- writing ------------------------------------------------------------------------------------


def _checked(conn: sa.Connection, kind: str, d: Draft) -> Draft:
    values = {"title_zh": clean_text(d.title_zh, one_line=True),
              "title_en": clean_text(d.title_en, one_line=True),
              "body_zh": clean_text(d.body_zh, one_line=False),
              "body_en": clean_text(d.body_en, one_line=False)}
    for field, text in values.items():
        limit = MAX_TITLE if field.startswith("title") else MAX_BODY
        if len(text) > limit:
            raise ContentError("content_too_long", field=field, limit=limit)
    if not values["title_zh"] and not values["title_en"]:
        raise ContentError("content_untitled")
    if isinstance(d.position, bool) or not isinstance(d.position, int) \
            or not 0 <= d.position <= MAX_POSITION:
        raise ContentError("content_bad_position", high=MAX_POSITION)
    if d.publish_at and d.unpublish_at and d.unpublish_at <= d.publish_at:
        raise ContentError("content_bad_schedule")
    event_id = d.event_id if kind == "event" else None
    if kind == "event" and event_id is None:
        raise ContentError("content_event_missing")
    if event_id is not None and conn.execute(
            sa.select(events.c.id).where(events.c.id == event_id)).first() is None:
        raise CatalogError("unknown_event", event_id=event_id)
    if d.image_id is not None and conn.execute(sa.select(content_images.c.id).where(
            content_images.c.id == d.image_id)).first() is None:
        raise ContentError("unknown_content_image", image_id=d.image_id)
    return Draft(**values, image_id=d.image_id, event_id=event_id, position=d.position,
                 publish_at=d.publish_at, unpublish_at=d.unpublish_at)


def _shown(d: Draft) -> dict:
    """A revision as the audit log keeps it: what changed is readable, bodies by length."""
    out = asdict(d)
    for field in ("body_zh", "body_en"):
        out[field] = f"{len(out[field])} characters"
    for field in ("publish_at", "unpublish_at"):
        out[field] = out[field].isoformat() if out[field] else None
    return out


def _add_revision(conn, item_id: int, number: int, d: Draft, actor: str, now) -> None:
    conn.execute(sa.insert(content_revisions).values(
        item_id=item_id, number=number, author=actor, saved_at=now, **asdict(d)))


def create_item(conn: sa.Connection, kind: str, draft: Draft, actor: str,
                now: datetime | None = None) -> int:
    """A new draft item with its first revision; its id."""
    now = now or utcnow()
    if kind not in CONTENT_KINDS:
        raise ContentError("unknown_content_kind", kinds=", ".join(CONTENT_KINDS))
    d = _checked(conn, kind, draft)
    item_id = conn.execute(sa.insert(content_items).values(
        kind=kind, state="draft", current_revision=1, created_by=actor, created_at=now,
        updated_at=now).returning(content_items.c.id)).scalar_one()
    _add_revision(conn, item_id, 1, d, actor, now)
    record(conn, actor, "content.create", f"content:{item_id}", None,
           {"kind": kind, "revision": 1, **_shown(d)})
    return item_id


def _moved(conn, it: Item, values: dict, *, state: str | None = None) -> None:
    """Update the item only if no one moved it since it was read (else ``content_changed``)."""
    moved = conn.execute(sa.update(content_items).where(
        content_items.c.id == it.id, content_items.c.state == it.state,
        content_items.c.current_revision == it.current_revision).values(**values)).rowcount
    if moved != 1:
        now_at = item(conn, it.id)
        raise ContentError("content_changed", item_id=it.id, current=now_at.current_revision,
                           revision=it.current_revision)


def _expect(it: Item, revision_number: int | None) -> None:
    if revision_number is not None and revision_number != it.current_revision:
        raise ContentError("content_changed", item_id=it.id, current=it.current_revision,
                           revision=revision_number)


def save_item(conn: sa.Connection, item_id: int, draft: Draft, actor: str,
              now: datetime | None = None, *, base_revision: int | None = None) -> int:
    """Save a new revision (the maker's edit, written over ``base_revision`` if named: an edit
    of an older version is refused, ``content_changed``); the item becomes a draft again
    (one in review goes back, so what is reviewed is what was sent), while a live revision
    keeps showing. The new revision's number."""
    now = now or utcnow()
    it = item(conn, item_id, lock=True)
    if it.state == "deleted":
        raise ContentError("content_deleted", item_id=item_id)
    _expect(it, base_revision)
    d = _checked(conn, it.kind, draft)
    number = it.current_revision + 1
    _moved(conn, it, {"current_revision": number, "state": "draft", "updated_at": now})
    _add_revision(conn, item_id, number, d, actor, now)
    record(conn, actor, "content.save", f"content:{item_id}",
           {"state": it.state, "revision": it.current_revision},
           {"state": "draft", "revision": number, **_shown(d)})
    return number


def submit_item(conn: sa.Connection, item_id: int, actor: str, now: datetime | None = None,
                *, revision_number: int | None = None) -> None:
    """Send a draft (or a withdrawn item) for review: a second person publishes it."""
    now = now or utcnow()
    it = item(conn, item_id, lock=True)
    if it.state not in ("draft", "withdrawn"):
        raise ContentError("content_not_draft", item_id=item_id, state=it.state)
    _expect(it, revision_number)
    _moved(conn, it, {"state": "review", "submitted_by": actor, "submitted_at": now,
                      "reviewed_by": None, "reviewed_at": None, "review_note": None,
                      "updated_at": now})
    record(conn, actor, "content.submit", f"content:{item_id}", {"state": it.state},
           {"state": "review", "revision": it.current_revision})


def _decidable(conn: sa.Connection, item_id: int, actor: str,
               revision_number: int | None) -> Item:
    it = item(conn, item_id, lock=True)
    if it.state != "review":
        raise ContentError("content_not_in_review", item_id=item_id, state=it.state)
    _expect(it, revision_number)
    if actor in makers(conn, it):
        raise ContentError("content_maker_cannot_publish", item_id=item_id, maker=actor)
    return it


def publish_item(conn: sa.Connection, item_id: int, actor: str, now: datetime | None = None,
                 *, revision_number: int | None = None) -> None:
    """Publish the revision in review (``revision_number``: the one the publisher read): it
    becomes the live one, shown from its ``publish_at`` (or now) until its
    ``unpublish_at``. Never by one of its makers (:func:`makers`)."""
    now = now or utcnow()
    it = _decidable(conn, item_id, actor, revision_number)
    conn.execute(sa.update(content_revisions).where(
        content_revisions.c.item_id == item_id,
        content_revisions.c.number == it.current_revision,
        content_revisions.c.published_by.is_(None)).values(published_by=actor, published_at=now))
    _moved(conn, it, {"state": "published", "live_revision": it.current_revision,
                      "reviewed_by": actor, "reviewed_at": now, "review_note": None,
                      "updated_at": now})
    record(conn, actor, "content.publish", f"content:{item_id}",
           {"state": "review", "live_revision": it.live_revision,
            "submitted_by": it.submitted_by},
           {"state": "published", "live_revision": it.current_revision,
            "publish_at": it.current.publish_at.isoformat() if it.current.publish_at else None,
            "unpublish_at": (it.current.unpublish_at.isoformat()
                             if it.current.unpublish_at else None)})


def return_item(conn: sa.Connection, item_id: int, actor: str, note: str = "",
                now: datetime | None = None, *, revision_number: int | None = None) -> None:
    """Send an item in review back to its maker as a draft, with a note (a second person's
    decision, as publishing is)."""
    now = now or utcnow()
    note = clean_text(note, one_line=True)
    if len(note) > MAX_NOTE:
        raise ContentError("content_too_long", field="note", limit=MAX_NOTE)
    it = _decidable(conn, item_id, actor, revision_number)
    _moved(conn, it, {"state": "draft", "reviewed_by": actor, "reviewed_at": now,
                      "review_note": note or None, "updated_at": now})
    record(conn, actor, "content.return", f"content:{item_id}", {"state": "review"},
           {"state": "draft", "note": note})


def withdraw_item(conn: sa.Connection, item_id: int, actor: str,
                  now: datetime | None = None) -> None:
    """Take an item off the site now (its revisions stay; sending it for review again and a
    second person's publication put it back)."""
    now = now or utcnow()
    it = item(conn, item_id, lock=True)
    if it.live_revision is None:
        raise ContentError("content_not_live", item_id=item_id)
    state = "withdrawn" if it.state == "published" else it.state
    _moved(conn, it, {"state": state, "live_revision": None, "updated_at": now})
    record(conn, actor, "content.withdraw", f"content:{item_id}",
           {"state": it.state, "live_revision": it.live_revision},
           {"state": state, "live_revision": None})


def delete_item(conn: sa.Connection, item_id: int, actor: str,
                now: datetime | None = None) -> None:
    """Throw away a draft (or a withdrawn item) that is not on the site. Its revisions are
    kept, as every saved version is; the item leaves the lists."""
    now = now or utcnow()
    it = item(conn, item_id, lock=True)
    if it.state not in ("draft", "withdrawn"):
        raise ContentError("content_not_deletable", item_id=item_id, state=it.state)
    if it.live_revision is not None:
        raise ContentError("content_is_live", item_id=item_id)
    _moved(conn, it, {"state": "deleted", "updated_at": now})
    record(conn, actor, "content.delete", f"content:{item_id}", {"state": it.state},
           {"state": "deleted"})


def add_image(conn: sa.Connection, data: bytes, actor: str, now: datetime | None = None) -> int:
    """Keep an uploaded image once its bytes are checked (:func:`cloud.buyers.photos.
    checked_photo`: at most :data:`MAX_IMAGE_BYTES`, a JPEG or PNG by its first bytes whatever
    the upload claimed, and decodable as one); its id."""
    now = now or utcnow()
    media_type = checked_photo(data, MAX_IMAGE_BYTES)
    digest = hashlib.sha256(data).hexdigest()
    image_id = conn.execute(sa.insert(content_images).values(
        media_type=media_type, size=len(data), sha256=digest, data=data, uploaded_by=actor,
        uploaded_at=now).returning(content_images.c.id)).scalar_one()
    record(conn, actor, "content.image_upload", f"content_image:{image_id}", None,
           {"media_type": media_type, "size": len(data), "sha256": digest})
    return image_id


def recent_images(conn: sa.Connection, limit: int = 24) -> list[sa.Row]:
    """The latest uploads (no bytes), for the edit page to offer."""
    i = content_images
    return conn.execute(sa.select(i.c.id, i.c.media_type, i.c.size, i.c.uploaded_by,
                                  i.c.uploaded_at).order_by(i.c.id.desc()).limit(limit)).all()


def staff_image(conn: sa.Connection, image_id: int) -> tuple[str, bytes] | None:
    """Any uploaded image, for the back office's previews."""
    row = conn.execute(sa.select(content_images.c.media_type, content_images.c.data)
                       .where(content_images.c.id == image_id)).first()
    return None if row is None else (row.media_type, bytes(row.data))


def event_choices(conn: sa.Connection) -> list[sa.Row]:
    """The events a recommendation may name (id, code, name), by code."""
    return conn.execute(sa.select(events.c.id, events.c.code, events.c.name)
                        .order_by(events.c.code)).all()


def event_name(conn: sa.Connection, event_id: int | None) -> sa.Row | None:
    if event_id is None:
        return None
    return conn.execute(sa.select(events.c.id, events.c.code, events.c.name)
                        .where(events.c.id == event_id)).first()


# -- what the public sees -------------------------------------------------------------------------


def _live_now(now: datetime):
    """Items whose live revision shows at ``now``: the join and the time window."""
    i, r = content_items, content_revisions
    return (sa.select(i.c.id, i.c.kind, r.c.title_zh, r.c.title_en, r.c.body_zh, r.c.body_en,
                      r.c.image_id, r.c.position,
                      sa.func.coalesce(r.c.publish_at, r.c.published_at).label("shown_from"),
                      r.c.event_id)
            .join(r, sa.and_(r.c.item_id == i.c.id, r.c.number == i.c.live_revision))
            .where(i.c.live_revision.is_not(None),
                   sa.or_(r.c.publish_at.is_(None), r.c.publish_at <= now),
                   sa.or_(r.c.unpublish_at.is_(None), r.c.unpublish_at > now)))


def published(conn: sa.Connection, kind: str, *, now: datetime,
              limit: int = 20) -> list[PublicItem]:
    """What the public may see of ``kind`` (announcement, news or faq) at ``now``: news and
    announcements newest first, the FAQ by its order numbers."""
    if kind not in PUBLIC_KINDS:
        raise ContentError("unknown_content_kind", kinds=", ".join(PUBLIC_KINDS))
    q = _live_now(now).where(content_items.c.kind == kind).limit(limit)
    r = content_revisions
    if kind == "faq":
        q = q.order_by(r.c.position, content_items.c.id)
    else:
        q = q.order_by(sa.func.coalesce(r.c.publish_at, r.c.published_at).desc(),
                       content_items.c.id.desc())
    return [PublicItem(**row._mapping) for row in conn.execute(q)]


def recommended_events(conn: sa.Connection, *, now: datetime,
                       limit: int = 20) -> list[PublicItem]:
    """The recommended events shown at ``now``, by their order numbers, with each event's
    code and name."""
    q = (_live_now(now).add_columns(events.c.code.label("event_code"),
                                    events.c.name.label("event_name"))
         .join(events, events.c.id == content_revisions.c.event_id)
         .where(content_items.c.kind == "event")
         .order_by(content_revisions.c.position, content_items.c.id).limit(limit))
    return [PublicItem(**row._mapping) for row in conn.execute(q)]


def image(conn: sa.Connection, image_id: int, *,
          now: datetime | None = None) -> tuple[str, bytes] | None:
    """An image's media type and bytes, if a revision shown at ``now`` shows it; else None
    (an image only uploaded, or only in drafts, is not public)."""
    shown = _live_now(now or utcnow()).where(content_revisions.c.image_id == image_id)
    if conn.execute(shown.limit(1)).first() is None:
        return None
    return staff_image(conn, image_id)
