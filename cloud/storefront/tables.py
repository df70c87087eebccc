"""The storefront's tables: a waiting room per session (issue 17 §2); and the content the
public site shows (announcements, news, FAQ and recommended events), every saved version of
it, and the images it shows (issue 17 §3).

An item's words live in its revisions, never in the item: each save adds a revision (numbered
from 1 per item) and none is changed afterwards, except to note who published it. The item
says which revision is being worked on (``current_revision``) and which one the public sees
(``live_revision``, none before the first publication and after a withdrawal), so a
published item keeps showing while its next version is written and reviewed. When a revision
shows is its own ``publish_at`` / ``unpublish_at``: every public query compares them with the
time it is asked at, so nothing has to run at those moments.
"""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

CONTENT_KINDS = ("announcement", "news", "faq", "event")
# draft: being written; review: sent for a second person to publish; published: its current
# revision is the live one; withdrawn: taken off the site; deleted: a draft thrown away (its
# revisions stay, as every saved version does)
CONTENT_STATES = ("draft", "review", "published", "withdrawn", "deleted")

content_items = sa.Table(
    "content_items", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("state", sa.String(10), nullable=False, server_default="draft"),
    sa.Column("current_revision", sa.Integer, nullable=False),
    sa.Column("live_revision", sa.Integer),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("submitted_by", sa.String(80)),
    sa.Column("submitted_at", UtcDateTime()),
    sa.Column("reviewed_by", sa.String(80)),
    sa.Column("reviewed_at", UtcDateTime()),
    sa.Column("review_note", sa.String(200)),
    sa.CheckConstraint("kind IN ('announcement', 'news', 'faq', 'event')", name="kind_known"),
    sa.CheckConstraint("state IN ('draft', 'review', 'published', 'withdrawn', 'deleted')",
                       name="state_known"),
    # the second person: whoever sent an item for review never decides it
    sa.CheckConstraint("reviewed_by IS NULL OR submitted_by IS NULL "
                       "OR reviewed_by != submitted_by", name="reviewer_not_submitter"),
    sa.CheckConstraint("live_revision IS NULL OR live_revision <= current_revision",
                       name="live_not_ahead"),
    sa.Index("ix_content_items_kind_state", "kind", "state"),
)

# An image uploaded for content, checked by its bytes (JPEG or PNG, decodable, under a size
# limit) before it is kept. Content is public once published: nothing here is sealed.
content_images = sa.Table(
    "content_images", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("media_type", sa.String(40), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("uploaded_by", sa.String(80), nullable=False),
    sa.Column("uploaded_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("media_type IN ('image/jpeg', 'image/png')", name="media_type_known"),
)

# Every saved version of an item. Titles and bodies in Chinese and English (either may be
# empty, not both titles); bodies are plain text, paragraphs split by an empty line.
# ``position`` orders FAQ entries and recommended events; ``event_id`` is the recommended
# event. ``published_by`` is the second person who made this version the live one.
content_revisions = sa.Table(
    "content_revisions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("content_items.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("title_zh", sa.String(200), nullable=False, server_default=""),
    sa.Column("title_en", sa.String(200), nullable=False, server_default=""),
    sa.Column("body_zh", sa.Text, nullable=False, server_default=""),
    sa.Column("body_en", sa.Text, nullable=False, server_default=""),
    sa.Column("image_id", sa.Integer, sa.ForeignKey("content_images.id")),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id")),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    sa.Column("publish_at", UtcDateTime()),
    sa.Column("unpublish_at", UtcDateTime()),
    sa.Column("author", sa.String(80), nullable=False),
    sa.Column("saved_at", UtcDateTime(), nullable=False),
    sa.Column("published_by", sa.String(80)),
    sa.Column("published_at", UtcDateTime()),
    sa.UniqueConstraint("item_id", "number", name="uq_content_revisions_item_number"),
    sa.CheckConstraint("number >= 1", name="number_positive"),
    sa.CheckConstraint("title_zh != '' OR title_en != ''", name="titled"),
    sa.CheckConstraint("unpublish_at IS NULL OR publish_at IS NULL "
                       "OR unpublish_at > publish_at", name="unpublish_after_publish"),
    # maker != checker, as the database sees it: the author never publishes their own version
    sa.CheckConstraint("published_by IS NULL OR published_by != author",
                       name="publisher_not_author"),
)

# A session's waiting room: its own settings (NULL: the hub's WAITING_ROOM_RATE and
# WAITING_ROOM_BURST; a rate of 0 turns the room off for the session) and the queue's state.
# ``issued`` numbers have been handed out, one by one, by one UPDATE … RETURNING each; the
# first ``frontier`` of them were admitted at ``anchor_us`` (microseconds since the epoch), and
# from then on ``anchor_rate`` more are admitted every second. Every number handed out moves
# the anchor to its moment, so a rate changed later counts from that moment on and an
# admission already made is never taken back.
waiting_rooms = sa.Table(
    "waiting_rooms", metadata,
    sa.Column("session_id", sa.Integer, sa.ForeignKey("sessions.id"), primary_key=True),
    sa.Column("rate", sa.Float),
    sa.Column("burst", sa.Integer),
    sa.Column("issued", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("frontier", sa.Float, nullable=False, server_default="0"),
    sa.Column("anchor_us", sa.BigInteger),
    sa.Column("anchor_rate", sa.Float, nullable=False, server_default="0"),
    sa.CheckConstraint("rate >= 0", name="rate_not_negative"),
    sa.CheckConstraint("burst >= 1", name="burst_positive"),
    sa.CheckConstraint("issued >= 0", name="issued_not_negative"),
)
